"""One rewrite policy, every entry point: the REST forms, `/chat`, `/chat/stream`, LangServe's
`/tutor/invoke` and `/tutor/stream` give the same status (or stream error code), the same quota
effect and the same number of model calls for the same request.

Refusals that need no subject (no model, anonymous, no profile, quota used up) are checked before
the thread is claimed, so streams answer them with a status too and nothing is created.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.api.sse import read_events
from tests.api.test_rewrite import PROFILE, rewriter, unique_content, used
from tests.fakes import CapturedRequest, Error, FakeOpenAI, Reply
from tests.fakes.fixtures import make_chat_model
from tests.graphs.conftest import tutor_responder

ENTRIES = ["rest", "chat", "chat_stream", "tutor_invoke", "tutor_stream"]


@dataclass
class Outcome:
    status: int
    code: str | None  # the error code: JSON body, or the stream's error event ("500" for LangServe's)
    answer: str | None = None
    retry_after: str | None = None


def respond(request: CapturedRequest) -> Reply | None:
    """Rewrites as in test_rewrite; the turn's other calls (title, …) as the graph tests script them."""
    if "translator" in request.system_prompt or "adapt passages" in request.system_prompt:
        return rewriter(request)
    return tutor_responder()(request)


def rewrite_calls(fake: FakeOpenAI) -> int:
    return sum(
        "translator" in r.system_prompt or "adapt passages" in r.system_prompt for r in fake.chat_requests
    )


def _error_code(response: Any) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


async def send(api: Any, entry: str, action: str, content: str | None, headers: dict[str, str]) -> Outcome:
    """The same rewrite request through one entry point."""
    client = api.client()
    extra = {"target_language": "ur"} if action == "translate" else {}
    if entry == "rest":
        response = await client.post(f"/{action}", json={"content": content, **extra}, headers=headers)
        body = response.json()
        return Outcome(response.status_code, _error_code(response), body.get("result"), _retry(response))
    turn = {"message": f"please {action} this", "mode": action, **extra}
    if content is not None:
        turn["content"] = content
    if entry in ("chat", "tutor_invoke"):
        path, payload = ("/chat", turn) if entry == "chat" else ("/tutor/invoke", {"input": turn})
        response = await client.post(path, json=payload, headers=headers)
        if response.status_code != 200:
            return Outcome(response.status_code, _error_code(response), None, _retry(response))
        body = response.json()
        return Outcome(200, None, body["response"] if entry == "chat" else body["output"]["answer"])
    path, payload = ("/chat/stream", turn) if entry == "chat_stream" else ("/tutor/stream", {"input": turn})
    async with client.stream("POST", path, json=payload, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            return Outcome(response.status_code, _error_code(response), None, _retry(response))
        events = []
        try:
            async for event in read_events(response):
                events.append(event)
        except httpx.RemoteProtocolError:
            # LangServe re-raises after its error event, which cuts the chunked body short.
            assert entry == "tutor_stream" and events[-1].name == "error", events
    for event in events:
        if event.name == "error":  # ours: {code, message}; LangServe's: {status_code, message}
            return Outcome(200, str(event.data.get("code") or event.data.get("status_code")))
        if event.name == "done":
            return Outcome(200, None, event.data["answer"])
        if event.name == "data" and isinstance(event.data, dict) and action in event.data:
            return Outcome(200, None, event.data[action]["answer"])
    raise AssertionError(f"no answer and no error in {events}")


def _retry(response: Any) -> str | None:
    value = response.headers.get("retry-after")
    return str(value) if value is not None else None


async def thread_rows(api: Any, thread: str) -> tuple[int, int]:
    """(threads rows, transcript rows) for `thread`."""
    async with api.context.db.pool.connection() as conn:
        threads = await (
            await conn.execute("SELECT count(*) AS n FROM threads WHERE thread_id = %s", (thread,))
        ).fetchone()
        messages = await (
            await conn.execute("SELECT count(*) AS n FROM thread_messages WHERE thread_id = %s", (thread,))
        ).fetchone()
    assert threads is not None and messages is not None
    return int(threads["n"]), int(messages["n"])


def reader() -> str:
    return f"reader-{uuid.uuid4().hex[:8]}"


async def take_quota(api: Any, user: str, action: str, units: int) -> None:
    async with api.context.db.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO usage_counters (user_id, action, day, used) VALUES (%s, %s, %s, %s)",
            (user, action, datetime.now(UTC).date(), units),
        )


# case: (action, expected status, expected code)
REFUSALS = {
    "anonymous": ("translate", 401, "login_required"),
    "no_profile": ("personalize", 409, "profile_required"),
    "over_quota": ("translate", 429, "quota_exceeded"),
    "no_chat_model": ("translate", 503, "needs_chat_model"),
}


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("case", list(REFUSALS))
async def test_refusals_are_the_same_everywhere(
    make_api: Any, fake_openai: FakeOpenAI, entry: str, case: str
) -> None:
    action, status, code = REFUSALS[case]
    fake_openai.responder = respond
    model = None if case == "no_chat_model" else make_chat_model(fake_openai)
    api = await make_api(model, translate_daily_quota=3)
    user = None if case == "anonymous" else reader()
    if case == "over_quota":
        assert user is not None
        await take_quota(api, user, action, 3)
    thread = str(uuid.uuid4())
    headers = api.headers(user, thread)

    outcome = await send(api, entry, action, unique_content(), headers)

    assert (outcome.status, outcome.code) == (status, code), outcome
    if case == "over_quota":
        assert outcome.retry_after and 1 <= int(outcome.retry_after) <= 86_400
    assert fake_openai.chat_requests == []  # no model call at all, not even a title
    assert await thread_rows(api, thread) == (0, 0)  # nothing created for a refused request
    if user is not None:
        assert await used(api, user, action) == (3 if case == "over_quota" else None)


@pytest.mark.parametrize("entry", ENTRIES)
async def test_a_cached_result_costs_no_quota_anywhere(
    make_api: Any, fake_openai: FakeOpenAI, entry: str
) -> None:
    fake_openai.responder = respond
    api = await make_api(make_chat_model(fake_openai))
    user, content = reader(), unique_content()
    headers = api.headers(user)
    await api.client().put("/profile", json=PROFILE, headers=headers)
    first = await send(api, "rest", "personalize", content, headers)
    assert first.status == 200 and await used(api, user, "personalize") == 1

    again = await send(api, entry, "personalize", content, api.headers(user, str(uuid.uuid4())))

    assert (again.status, again.code, again.answer) == (200, None, first.answer)
    assert rewrite_calls(fake_openai) == 1
    assert await used(api, user, "personalize") == 1


# A failed model call: the unit is given back everywhere. LangServe's stream reports any failure as
# its own generic error event (status_code 500, no code): that is all langserve can send mid-stream.
FAILED = {
    "rest": (503, "model_unavailable"),
    "chat": (503, "model_unavailable"),
    "chat_stream": (200, "model_unavailable"),
    "tutor_invoke": (503, "model_unavailable"),
    "tutor_stream": (200, "500"),
}


@pytest.mark.parametrize("entry", ENTRIES)
async def test_a_failed_model_call_is_refunded_everywhere(
    make_api: Any, fake_openai: FakeOpenAI, entry: str
) -> None:
    fake_openai.responder = lambda request: Error(500)
    api = await make_api(make_chat_model(fake_openai))
    user, thread = reader(), str(uuid.uuid4())

    outcome = await send(api, entry, "translate", unique_content(), api.headers(user, thread))

    assert (outcome.status, outcome.code) == FAILED[entry], outcome
    assert rewrite_calls(fake_openai) == 1
    assert await used(api, user, "translate") == 0
    assert (await thread_rows(api, thread))[1] == 0  # no transcript entry for a failed turn
    fake_openai.problems.clear()


# Known only once the run has the thread's state: a stream has started by then.
NO_SUBJECT = {
    "chat": (422, "no_subject"),
    "chat_stream": (200, "no_subject"),
    "tutor_invoke": (422, "no_subject"),
    "tutor_stream": (200, "500"),  # LangServe's own error event
}


@pytest.mark.parametrize("entry", list(NO_SUBJECT))
async def test_nothing_to_rewrite_leaves_no_thread(
    make_api: Any, fake_openai: FakeOpenAI, entry: str
) -> None:
    """No content, no selection, no last answer, no page."""
    fake_openai.responder = respond
    api = await make_api(make_chat_model(fake_openai))
    user, thread = reader(), str(uuid.uuid4())
    outcome = await send(api, entry, "translate", None, api.headers(user, thread))
    assert (outcome.status, outcome.code) == NO_SUBJECT[entry], outcome
    assert fake_openai.chat_requests == [] and await used(api, user, "translate") is None
    assert await thread_rows(api, thread) == (0, 0)


async def test_a_classified_rewrite_follows_the_same_rules(make_api: Any, fake_openai: FakeOpenAI) -> None:
    """`auto` routed to translate by the classifier: an anonymous reader is refused like any other."""
    fake_openai.responder = lambda request: tutor_responder(route="translate")(request) or rewriter(request)
    api = await make_api(make_chat_model(fake_openai))
    thread = str(uuid.uuid4())
    body = {"message": "Translate this into Urdu", "content": unique_content()}
    response = await api.client().post("/chat", json=body, headers=api.headers(None, thread))
    assert response.status_code == 401 and response.json()["error"]["code"] == "login_required"
    assert rewrite_calls(fake_openai) == 0 and await thread_rows(api, thread) == (0, 0)
    signed_in = await api.client().post("/chat", json=body, headers=api.headers(reader(), thread))
    assert signed_in.status_code == 200 and signed_in.json()["route"] == "translate"


async def test_without_a_model_auto_answers_the_books_own_questions(make_api: Any) -> None:
    """The keyword rules once sent this one (book/questions.jsonl q99) to personalize: a 503."""
    api = await make_api()  # extractive
    question = "How do I adapt a pretrained generalist policy to my own hardware cheaply?"
    response = await api.client().post("/chat", json={"message": question})
    assert response.status_code == 200, response.text
    assert response.json()["route"] == "ask" and response.json()["sources"]
