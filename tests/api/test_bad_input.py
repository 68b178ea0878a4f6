"""Bad input on every route, LangServe's included: a 4xx in the one error shape (422s name the field,
never echo the value), no thread left behind, and no model call — the fake OpenAI model is
configured for the whole table and must not have seen a single request.

The table is built from a few generators (every body route × every malformed body; every turn
route × every text field × every bad string; route-specific fields, query, header and path cases)
and run against one live server; all mismatches are reported together.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from langserve.lzstring import LZString

from api.thread_access import claim_thread
from tests.fakes.fixtures import make_chat_model

MARKER = "SECRET-MARKER-7f3a"  # put into bad values: it must never come back in a response
TURN = {"message": "What does a ROS 2 topic do?"}
EMPTY_CONFIG = LZString.compressToEncodedURIComponent("{}")  # LangServe's config hashes
LIST_CONFIG = LZString.compressToEncodedURIComponent("[1]")


@dataclass(frozen=True)
class Bad:
    name: str
    method: str
    path: str  # `{thread}` becomes a thread of the signed-in user
    status: int
    body: bytes | None = None
    content_type: str | None = "application/json"
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[bytes, bytes], ...] = ()
    code: str | None = None


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def turn_routes() -> dict[str, Any]:
    """Routes that run a turn, with how each wraps the turn's fields into its body."""
    wrap_input = lambda fields: {"input": fields}  # noqa: E731
    routes: dict[str, Any] = {"/chat": dict, "/chat/stream": dict}
    for endpoint in ("invoke", "stream", "stream_events", "stream_log"):
        routes[f"/tutor/{endpoint}"] = wrap_input
    routes[f"/tutor/c/{EMPTY_CONFIG}/invoke"] = wrap_input  # a valid config hash: `{}`
    return routes


# Every route that takes a JSON body, with a body it would accept.
BODY_ROUTES: list[tuple[str, str, Any]] = [
    *(("POST", path, wrap(TURN)) for path, wrap in turn_routes().items()),
    ("PATCH", "/threads/{thread}", {"title": "Topics"}),
    ("POST", "/threads/{thread}/feedback", {"seq": 2, "rating": "up"}),
    ("PUT", "/profile", {"software_background": "beginner"}),
    ("POST", "/personalize", {"content": "A topic is a named bus."}),
    ("POST", "/translate", {"content": "A topic is a named bus.", "target_language": "ur"}),
]

MALFORMED_BODIES: list[tuple[str, bytes, str | None, int]] = [
    ("invalid-json", b"{not json", "application/json", 422),
    ("empty-body", b"", "application/json", 422),
    ("no-body-no-type", b"", None, 422),
    ("form-body", b"message=hi", "application/x-www-form-urlencoded", 422),
    ("json-as-text-plain", dumps(TURN), "text/plain", 422),
    ("multipart", b"--x\r\n\r\nhi\r\n--x--", "multipart/form-data; boundary=x", 422),
    ("nested-10000-deep", b'{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}", "application/json", 400),
    ("invalid-utf8", b'{"message": "caf\xc3\x28 \xff\xfe"}', "application/json", 400),
    ("int-5000-digits", b'{"a": ' + b"9" * 5000 + b"}", "application/json", 400),  # int() refuses it
    ("json-array", b"[]", "application/json", 422),
    ("json-null", b"null", "application/json", 422),
    ("json-string", b'"hello"', "application/json", 422),
    ("json-number", b"1e400", "application/json", 422),
    ("truncated", dumps(TURN)[:-3], "application/json", 422),
    ("trailing-garbage", dumps(TURN) + b"}{", "application/json", 422),
]

# Text a turn route must refuse in any text field, and why.
BAD_TEXT: list[tuple[str, bytes]] = [
    ("nul", f'"a\\u0000{MARKER}"'.encode()),
    ("lone-surrogate", f'"{MARKER}\\ud800"'.encode()),
    ("number", b"42"),
    ("list", f'["{MARKER}"]'.encode()),
    ("object", f'{{"x": "{MARKER}"}}'.encode()),
    ("nan", b"NaN"),
    ("infinity", b"Infinity"),
    ("bool", b"true"),
]
TURN_TEXT_FIELDS = {"message": 8000, "selected_text": 20_000, "page": 2_000, "content": 100_000}


def raw_body(route_wrap: Any, fields: dict[str, bytes]) -> bytes:
    """A turn body with some fields given as raw JSON text (for values `json.dumps` cannot make)."""
    placeholders = {name: f"@@{name}@@" for name in fields}
    text = json.dumps(route_wrap({**TURN, **placeholders}))
    for name, raw in fields.items():
        text = text.replace(f'"{placeholders[name]}"', raw.decode())
    return text.encode()


def table() -> list[Bad]:
    cases: list[Bad] = []
    for method, path, _ in BODY_ROUTES:
        for name, body, content_type, status in MALFORMED_BODIES:
            cases.append(Bad(f"{name} {method} {path}", method, path, status, body, content_type))
    for path, wrap in turn_routes().items():
        for field_name, limit in TURN_TEXT_FIELDS.items():
            for name, raw in BAD_TEXT:
                body = raw_body(wrap, {field_name: raw})
                cases.append(Bad(f"{field_name}={name} {path}", "POST", path, 422, body))
            too_long = dumps(wrap({**TURN, field_name: MARKER + "x" * limit}))
            cases.append(Bad(f"{field_name}-too-long {path}", "POST", path, 422, too_long))
        for name, fields in [
            ("no-message", {"page": "intro"}),
            ("empty-message", {"message": ""}),
            ("unknown-field", {**TURN, "user_id": MARKER}),
            ("server-field", {**TURN, "thread_id_override": MARKER}),
            ("bad-mode", {**TURN, "mode": MARKER}),
            ("bad-language", {**TURN, "target_language": MARKER}),
        ]:
            cases.append(Bad(f"{name} {path}", "POST", path, 422, dumps(wrap(fields))))
        duplicate = raw_body(wrap, {}).replace(b'"message":', b'"message": "ok", "message":', 1)
        duplicate = duplicate.replace(b'"What does', b'"a\\u0000 What does', 1)
        cases.append(Bad(f"duplicate-key-last-bad {path}", "POST", path, 422, duplicate))
        for name, headers, code in [
            ("short-thread-id", ((b"x-thread-id", b"short"),), "invalid_thread_id"),
            ("long-thread-id", ((b"x-thread-id", b"a" * 129),), "invalid_thread_id"),
            ("thread-id-spaces", ((b"x-thread-id", b"not a valid id"),), "invalid_thread_id"),
            ("thread-id-latin1", ((b"x-thread-id", b"\xff\xfe-abcdefgh"),), "invalid_thread_id"),
            ("two-thread-ids", ((b"x-thread-id", b"thread-aaaa"), (b"x-thread-id", b"thread-bbbb")), None),
        ]:
            cases.append(
                Bad(f"{name} {path}", "POST", path, 400, dumps(wrap(TURN)), headers=headers, code=code)
            )
        if path.startswith("/chat"):
            for name, value in [("nul", "a\u0000aaaaaaaa"), ("short", "abc"), ("slash", "../../etc/passwd")]:
                body = dumps({**TURN, "thread_id": value})
                cases.append(Bad(f"body-thread-id-{name} {path}", "POST", path, 400, body))
            cases.append(Bad(f"thread-id-number {path}", "POST", path, 422, dumps({**TURN, "thread_id": 5})))
            both = dumps({**TURN, "thread_id": "thread-aaaa", "session_id": "thread-bbbb"})
            cases.append(Bad(f"thread_id-and-session_id {path}", "POST", path, 422, both))
        else:
            for name, extra in [
                ("config-not-object", {"config": 5}),
                ("config-list", {"config": [MARKER]}),
                ("input-not-object", {"input": MARKER}),
                ("input-missing", {"input": None}),
            ]:
                cases.append(Bad(f"{name} {path}", "POST", path, 422, dumps({**wrap(TURN), **extra})))
    for endpoint in ("invoke", "stream", "stream_events", "stream_log"):
        # The playground's stream_log has no config-hash form (api.playground): there, a 404.
        status = 404 if endpoint == "stream_log" else 400
        for name, config_hash in [("garbage", "not-lz"), ("not-a-dict", LIST_CONFIG), ("nul", "%00")]:
            path = f"/tutor/c/{config_hash}/{endpoint}"
            cases.append(Bad(f"config-hash-{name} {path}", "POST", path, status, dumps({"input": TURN})))
    for endpoint in ("stream_events", "stream_log"):
        path = f"/tutor/{endpoint}"
        body = dumps({"input": TURN, "include_names": [1, 2]})
        cases.append(Bad(f"include-names-not-strings {path}", "POST", path, 422, body))
    cases += route_specific()
    return cases


def route_specific() -> list[Bad]:
    cases = []
    for name, body in [
        ("title-nul", {"title": f"a\u0000{MARKER}"}),
        ("title-empty", {"title": ""}),
        ("title-too-long", {"title": MARKER + "x" * 200}),
        ("title-number", {"title": 5}),
        ("title-unknown-field", {"title": "ok", "owner": MARKER}),
        ("title-missing", {}),
    ]:
        cases.append(Bad(name, "PATCH", "/threads/{thread}", 422, dumps(body)))
    for name, body in [
        ("comment-nul", {"seq": 2, "rating": "up", "comment": f"\u0000{MARKER}"}),
        ("comment-too-long", {"seq": 2, "rating": "up", "comment": MARKER + "x" * 2000}),
        ("seq-zero", {"seq": 0, "rating": "up"}),
        ("seq-negative", {"seq": -1, "rating": "up"}),
        ("seq-string", {"seq": MARKER, "rating": "up"}),
        ("seq-float", {"seq": 2.5, "rating": "up"}),
        ("rating-bad", {"seq": 2, "rating": MARKER}),
        ("feedback-unknown-field", {"seq": 2, "rating": "up", "user_id": MARKER}),
    ]:
        cases.append(Bad(name, "POST", "/threads/{thread}/feedback", 422, dumps(body)))
    cases.append(
        Bad("seq-1e400", "POST", "/threads/{thread}/feedback", 422, b'{"seq": 1e400, "rating": "up"}')
    )
    for name, body in [
        ("profile-unknown-field", {"role": MARKER}),
        ("profile-bad-enum", {"software_background": MARKER}),
        ("profile-language-nul", {"preferred_language": "u\u0000r"}),
        ("profile-language-bad", {"preferred_language": MARKER}),
    ]:
        cases.append(Bad(name, "PUT", "/profile", 422, dumps(body)))
    for path in ("/personalize", "/translate"):
        for name, body in [
            ("content-nul", {"content": f"a\u0000{MARKER}"}),
            ("page-nul", {"page": f"a\u0000{MARKER}"}),
            ("content-too-long", {"content": MARKER + "x" * 100_000}),
            ("content-number", {"content": 5}),
            ("unknown-field", {"content": "ok", "prompt": MARKER}),
        ]:
            cases.append(Bad(f"{name} {path}", "POST", path, 422, dumps(body)))
    cases.append(
        Bad("language-bad", "POST", "/translate", 422, dumps({"content": "x", "target_language": MARKER}))
    )
    for name, params in [
        ("limit-zero", (("limit", "0"),)),
        ("limit-huge", (("limit", "101"),)),
        ("limit-text", (("limit", MARKER),)),
        ("offset-negative", (("offset", "-1"),)),
        ("offset-2^63", (("offset", str(2**63)),)),
        ("offset-2^64", (("offset", str(2**64)),)),
        ("offset-float", (("offset", "1e3"),)),
        ("offset-nul", (("offset", "\u0000"),)),
        ("limit-twice-last-bad", (("limit", "5"), ("limit", "0"))),
    ]:
        cases.append(Bad(name, "GET", "/threads", 422, None, None, params=params))
    for method, path, status in [
        ("GET", "/chat", 405),
        ("PUT", "/tutor/invoke", 405),
        ("DELETE", "/profile", 405),
        ("POST", "/health", 405),
        ("GET", "/no-such-route", 404),
        ("GET", "/tutor/batch", 404),
        ("GET", "/threads/%00", 404),
        ("GET", "/threads/" + "a" * 5000, 404),
        ("DELETE", "/threads/..%2F..%2Fetc", 404),
        ("POST", "/threads/%ff%fe/feedback", 404),
    ]:
        body = dumps({"seq": 2, "rating": "up"}) if method == "POST" else None
        cases.append(Bad(f"{method} {path[:40]}", method, path, status, body))
    return cases


@dataclass
class Outcome:
    tried: int = 0
    mismatches: list[str] = field(default_factory=list)


async def test_bad_input_is_a_4xx_in_our_shape_with_no_model_call(make_api: Any, fake_openai: Any) -> None:
    api = await make_api(make_chat_model(fake_openai), max_body_bytes=300_000)
    user = f"bad-input-{uuid.uuid4().hex[:8]}"
    thread = str(uuid.uuid4())
    await claim_thread(api.context.db, thread, user)
    token = api.headers(user)["Authorization"].encode()
    client = api.client()
    threads_before = await count_threads(api)
    outcome = Outcome()
    for case in table():
        headers = [(b"authorization", token), *case.headers]
        if case.content_type:
            headers.append((b"content-type", case.content_type.encode()))
        response = await client.request(
            case.method,
            case.path.replace("{thread}", thread),
            content=case.body,
            params=case.params,
            headers=headers,
        )
        outcome.tried += 1
        problem = check(case, response)
        if problem:
            outcome.mismatches.append(f"{case.name}: {problem}")
    print(f"bad input: {outcome.tried} requests, {len(outcome.mismatches)} mismatches")
    assert outcome.tried > 400
    assert outcome.mismatches == []
    assert fake_openai.chat_requests == []
    assert await count_threads(api) == threads_before  # no thread left behind by a refused turn


def check(case: Bad, response: Any) -> str | None:
    if response.status_code != case.status:
        return f"{response.status_code} (expected {case.status}): {response.text[:200]}"
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"not the error shape: {response.text[:200]}"
    if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
        return f"not the error shape: {error}"
    if case.code and error["code"] != case.code:
        return f"code {error['code']} (expected {case.code})"
    if response.status_code == 422:
        details = error.get("details")
        if not details or not all(isinstance(d.get("loc"), list) for d in details):
            return f"422 without field locations: {error}"
    if MARKER in response.text or "Traceback" in response.text:
        return f"echoes the value: {response.text[:200]}"
    return None


async def count_threads(api: Any) -> int:
    async with api.context.db.pool.connection() as conn:
        row = await (await conn.execute("SELECT count(*) AS n FROM threads")).fetchone()
    return int(row["n"])


async def test_two_authorization_headers_are_refused(make_api: Any) -> None:
    """A valid token followed by junk (or by another valid token) is not "the first one wins"."""
    api = await make_api()
    valid = api.headers("alice")["Authorization"].encode()
    other = api.headers("bob")["Authorization"].encode()
    client = api.client()
    for second in (b"Bearer junk", valid, other, b""):
        for method, path, body in [
            ("GET", "/threads", None),
            ("POST", "/chat", TURN),
            ("POST", "/tutor/invoke", {"input": TURN}),
        ]:
            headers = [(b"authorization", valid), (b"authorization", second)]
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (path, second, response.text)
            assert response.json() == {
                "error": {"code": "unauthorized", "message": "Missing or invalid credentials."}
            }
