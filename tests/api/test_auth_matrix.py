"""Bad credentials through the live API: every bad token × every route that reads credentials
(LangServe's included) is the same 401, byte for byte; and in jwks mode, key rotation costs one
refetch while a burst of unknown `kid`s costs at most a couple of fetches.

`tests/api/test_auth.py` tests the `Authenticator` itself; this file checks that every route
reaches it, and that nothing on the way answers differently.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from api.thread_access import claim_thread
from tests.api.jwks import JWKSServer, ec_key, rsa_key, serve_jwks
from tests.api.test_auth import b64, hmac_token

UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "Missing or invalid credentials."}}
ISSUER, AUDIENCE = "https://idp.test", "tutor"
TURN = {"message": "What does a ROS 2 topic do?"}
Header = tuple[bytes, bytes]


def routes(thread: str) -> list[tuple[str, str, Any]]:
    """Every route that reads credentials, each with a body it would accept."""
    turn_in = {"input": TURN}
    return [
        ("POST", "/chat", TURN),
        ("POST", "/chat/stream", TURN),
        ("GET", "/threads", None),
        ("GET", f"/threads/{thread}", None),
        ("PATCH", f"/threads/{thread}", {"title": "mine now"}),
        ("DELETE", f"/threads/{thread}", None),
        ("POST", f"/threads/{thread}/feedback", {"seq": 2, "rating": "up"}),
        ("GET", "/profile", None),
        ("PUT", "/profile", {"software_background": "beginner"}),
        ("POST", "/personalize", {"content": "A topic is a named bus."}),
        ("POST", "/translate", {"content": "A topic is a named bus.", "target_language": "ur"}),
        ("POST", "/tutor/invoke", turn_in),
        ("POST", "/tutor/stream", turn_in),
        ("POST", "/tutor/stream_events", turn_in),
        ("POST", "/tutor/stream_log", turn_in),
        ("POST", "/tutor/c/N4XyA/invoke", turn_in),
        ("POST", "/tutor/c/N4XyA/stream", turn_in),
    ]


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600} | extra


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in claims().items() if k != key}


def hs256_tokens(secret: str) -> dict[str, list[Header]]:
    """Bad `Authorization` headers for an hs256 app expecting ISSUER and AUDIENCE."""
    sign = lambda payload, **kw: jwt.encode(payload, secret, algorithm="HS256", **kw)  # noqa: E731
    good = sign(claims())
    now = int(time.time())
    public_pem = (
        rsa_key("a")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header, payload, signature = good.split(".")
    tokens = {
        "expired": sign(claims(exp=now - 120)),
        "nbf-in-future": sign(claims(nbf=now + 600)),
        "iat-in-future": sign(claims(iat=now + 600)),
        "wrong-secret": jwt.encode(claims(), "another-secret-" + "y" * 40, algorithm="HS256"),
        "alg-none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.",
        "alg-None-signed": f"{b64({'alg': 'None'})}.{payload}.{signature}",
        "alg-hs512-not-accepted": jwt.encode(claims(), secret + secret, algorithm="HS512"),
        "alg-rs256-in-hs-mode": jwt.encode(claims(), rsa_key("a"), algorithm="RS256"),
        "alg-swap-hs-with-public-key": hmac_token({"alg": "HS256"}, claims(), public_pem),
        "header-alg-changed": f"{b64({'alg': 'HS384', 'typ': 'JWT'})}.{payload}.{signature}",
        "payload-changed": f"{header}.{b64(claims(sub='mallory'))}.{signature}",
        "missing-sub": sign(without("sub")),
        "empty-sub": sign(claims(sub="")),
        "blank-sub": sign(claims(sub="   ")),
        "int-sub": sign(claims(sub=42)),
        "list-sub": sign(claims(sub=["alice"])),
        "missing-exp": sign(without("exp")),
        "string-exp": sign(claims(exp="tomorrow")),
        "wrong-iss": sign(claims(iss="https://evil.test")),
        "missing-iss": sign(without("iss")),
        "wrong-aud": sign(claims(aud="other")),
        "missing-aud": sign(without("aud")),
        "bad-base64-header": f"!!!.{payload}.{signature}",
        "bad-base64-payload": f"{header}.@@@.{signature}",
        "bad-base64-signature": f"{header}.{payload}.***",
        "two-segments": f"{header}.{payload}",
        "four-segments": f"{good}.{signature}",
        "payload-not-json": f"{header}.{b64(b'hello')}.{signature}",
        "payload-json-array": hmac_token({"alg": "HS256"}, [1], secret.encode()),
        "huge": sign(claims(pad="p" * 20_000)),
    }
    headers = {name: [(b"authorization", f"Bearer {token}".encode())] for name, token in tokens.items()}
    headers |= {
        "scheme-token": [(b"authorization", f"Token {good}".encode())],
        "scheme-basic": [(b"authorization", b"Basic YWxpY2U6c2VjcmV0")],
        "no-scheme": [(b"authorization", good.encode())],
        "bearer-only": [(b"authorization", b"Bearer")],
        "empty-header": [(b"authorization", b"")],
        "trailing-junk": [(b"authorization", f"Bearer {good} junk".encode())],
        "latin1-bytes": [(b"authorization", b"Bearer \xff\xfe\xfd")],
        "valid-then-junk": [(b"authorization", f"Bearer {good}".encode()), (b"authorization", b"junk")],
        "junk-then-valid": [
            (b"authorization", b"Bearer junk"),
            (b"authorization", f"Bearer {good}".encode()),
        ],
        "valid-twice": [(b"authorization", f"Bearer {good}".encode())] * 2,
    }
    return headers


async def assert_all_401(api: Any, bad: dict[str, list[Header]], thread: str) -> int:
    client = api.client()
    tried, wrong = 0, []
    for name, headers in bad.items():
        for method, path, body in routes(thread):
            response = await client.request(method, path, json=body, headers=headers)
            tried += 1
            if (
                response.status_code != 401
                or response.json() != UNAUTHORIZED
                or response.headers.get("www-authenticate") != "Bearer"
            ):
                wrong.append(f"{name} {method} {path}: {response.status_code} {response.text[:120]}")
    assert wrong == [], "\n".join(wrong[:20])
    return tried


async def test_every_bad_token_is_the_same_401_on_every_route(make_api: Any) -> None:
    api = await make_api(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, allow_anonymous=False)
    thread = str(uuid.uuid4())
    await claim_thread(api.context.db, thread, "alice")
    bad = hs256_tokens(api.settings.jwt_secret)
    assert len(bad) >= 25
    tried = await assert_all_401(api, bad, thread)
    print(f"jwt matrix (hs256): {len(bad)} bad credentials × {len(routes(thread))} routes = {tried} requests")
    # The control: the same app takes a good token on those routes (so the 401s are about the tokens).
    good = {"Authorization": f"Bearer {jwt.encode(claims(), api.settings.jwt_secret, algorithm='HS256')}"}
    response = await api.client().get(f"/threads/{thread}", headers=good)
    assert response.status_code == 200


@pytest.fixture
def idp() -> Iterator[JWKSServer]:
    with serve_jwks() as server:
        server.add("rsa-1", rsa_key("a"))
        yield server


def jwks_tokens(idp: JWKSServer) -> dict[str, list[Header]]:
    public_pem = (
        rsa_key("a")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    now = int(time.time())
    tokens = {
        "alg-swap-hs256-with-public-key": hmac_token({"alg": "HS256", "kid": "rsa-1"}, claims(), public_pem),
        "alg-none-with-kid": f"{b64({'alg': 'none', 'kid': 'rsa-1'})}.{b64(claims())}.",
        "right-kid-wrong-key": idp.sign(claims(), "rsa-1", key=rsa_key("other")),
        "ec-key-under-rsa-kid": idp.sign(claims(), "rsa-1", key=ec_key("a")),
        "unknown-kid": idp.sign(claims(), "nobody", key=rsa_key("a")),
        "no-kid": jwt.encode(claims(), rsa_key("a"), algorithm="RS256"),
        "kid-not-a-string": f"{b64({'alg': 'RS256', 'kid': ['rsa-1']})}.{b64(claims())}.c2ln",
        "expired": idp.sign(claims(exp=now - 120), "rsa-1"),
        "wrong-aud": idp.sign(claims(aud="other"), "rsa-1"),
        "wrong-iss": idp.sign(claims(iss="https://evil.test"), "rsa-1"),
        "missing-sub": idp.sign(without("sub"), "rsa-1"),
    }
    return {name: [(b"authorization", f"Bearer {token}".encode())] for name, token in tokens.items()}


async def jwks_api(make_api: Any, idp: JWKSServer) -> Any:
    return await make_api(
        auth_mode="jwks", jwks_url=idp.url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, allow_anonymous=False
    )


async def test_jwks_mode_bad_tokens_are_the_same_401_and_cost_one_fetch(
    make_api: Any, idp: JWKSServer
) -> None:
    api = await jwks_api(make_api, idp)
    thread = str(uuid.uuid4())
    await claim_thread(api.context.db, thread, "alice")
    bad = jwks_tokens(idp)
    tried = await assert_all_401(api, bad, thread)
    print(f"jwt matrix (jwks): {len(bad)} bad tokens × {len(routes(thread))} routes = {tried} requests")
    assert idp.hits <= 2  # one fetch for the key, at most one more for the unknown kid
    response = await api.client().get(
        "/threads", headers={"Authorization": f"Bearer {idp.sign(claims(), 'rsa-1')}"}
    )
    assert response.status_code == 200


async def test_jwks_rotation_refetches_once_and_random_kids_do_not_stampede(
    make_api: Any, idp: JWKSServer
) -> None:
    api = await jwks_api(make_api, idp)
    client = api.client()
    bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
    assert (await client.get("/threads", headers=bearer(idp.sign(claims(), "rsa-1")))).status_code == 200
    assert idp.hits == 1

    # A burst of 60 random kids, concurrently: at most one more fetch (then the fetch interval holds).
    forged = [idp.sign(claims(), f"kid-{uuid.uuid4().hex}", key=rsa_key("a")) for _ in range(60)]
    answers = await asyncio.gather(*(client.get("/threads", headers=bearer(t)) for t in forged))
    assert {r.status_code for r in answers} == {401}
    assert idp.hits <= 2

    # The provider rotates to a new key: once the fetch interval (5 s in the app) has passed, the
    # first token signed with it causes exactly one fetch, and later ones none.
    idp.add("rsa-2", rsa_key("b"))
    await asyncio.sleep(5.2)
    hits = idp.hits
    rotated = bearer(idp.sign(claims(sub="frank"), "rsa-2"))
    for _ in range(5):
        assert (await client.get("/threads", headers=rotated)).status_code == 200
    assert idp.hits == hits + 1
