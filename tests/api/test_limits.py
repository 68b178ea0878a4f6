"""Per-client limits on turns (api.limits): the anonymous rate, the concurrent-turn cap, and which
address a request counts against.

Every test but one counts against an address of its own, sent in a trusted X-Forwarded-For, so
counters of the session's database never leak from one test into another.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest
from starlette.requests import Request

from api.errors import ApiError
from api.limits import TurnSlot, admit_turn, client_address
from core.settings import Settings
from tests.api.sse import read_events
from tests.fakes import CapturedRequest, FakeOpenAI, Reply, Text
from tests.fakes.fixtures import make_chat_model
from tests.graphs.conftest import tutor_responder

QUESTION = {"message": "What does a ROS 2 topic do?", "mode": "ask"}
DAY = 86_400  # a window no test run crosses (except at midnight UTC)


def address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def slow_answers(delay: float) -> Any:
    """The tutor's replies, the answer itself only after `delay` seconds."""

    def respond(request: CapturedRequest) -> Reply | None:
        if "patient tutor for a textbook" in request.system_prompt:
            return Text("Topics carry streams of messages [1].", first_token_delay=delay)
        return tutor_responder()(request)

    return respond


async def test_anonymous_turns_are_rate_limited_per_client(make_api: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = tutor_responder()
    api = await make_api(
        make_chat_model(fake_openai),
        anonymous_turn_limit=3,
        anonymous_turn_window_seconds=DAY,
        trusted_proxy_header="X-Forwarded-For",
    )
    client, me = api.client(), {"X-Forwarded-For": address()}
    for _ in range(3):
        assert (await client.post("/chat", json=QUESTION, headers=me)).status_code == 200
    calls = len(fake_openai.chat_requests)

    refused = [
        await client.post("/chat", json=QUESTION, headers=me),
        await client.post("/chat/stream", json=QUESTION, headers=me),  # a status, not a stream
        await client.post("/tutor/invoke", json={"input": QUESTION}, headers=me),
    ]
    for response in refused:
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(response.headers["retry-after"]) <= DAY
    assert len(fake_openai.chat_requests) == calls  # no model call for a refused turn

    # Another address has its own count; a signed-in reader at the same address is not counted.
    other = await client.post("/chat", json=QUESTION, headers={"X-Forwarded-For": address()})
    assert other.status_code == 200
    signed_in = {**me, **api.headers(f"reader-{uuid.uuid4().hex[:8]}")}
    for _ in range(4):
        assert (await client.post("/chat", json=QUESTION, headers=signed_in)).status_code == 200


async def test_a_proxy_header_counts_only_when_configured(make_api: Any) -> None:
    api = await make_api(anonymous_turn_limit=2, anonymous_turn_window_seconds=DAY)  # extractive
    client = api.client()
    # Untrusted: every request counts against the socket peer (127.0.0.1), whatever it claims.
    statuses = [
        (await client.post("/chat", json=QUESTION, headers={"X-Forwarded-For": address()})).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]


def request_from(peer: str, *headers: tuple[str, str]) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers]
    return Request(
        {"type": "http", "method": "POST", "path": "/chat", "headers": raw, "client": (peer, 5000)}
    )


@pytest.mark.parametrize(
    ("hops", "headers", "client"),
    [
        (None, [("X-Forwarded-For", "1.1.1.1")], "192.0.2.9"),  # not configured: the peer
        (1, [("X-Forwarded-For", "6.6.6.6, 1.1.1.1")], "1.1.1.1"),  # the left entry is the client's own
        (2, [("X-Forwarded-For", "6.6.6.6, 1.1.1.1, 10.0.0.2")], "1.1.1.1"),
        (1, [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "1.1.1.1")], "1.1.1.1"),  # repeated header
        (2, [("X-Forwarded-For", "1.1.1.1")], "192.0.2.9"),  # too few hops: not via our proxies
        (1, [], "192.0.2.9"),
    ],
)
def test_which_hop_is_the_client(hops: int | None, headers: list[tuple[str, str]], client: str) -> None:
    values: dict[str, Any] = {"trusted_proxy_header": "X-Forwarded-For", "trusted_proxy_hops": hops or 1}
    settings = Settings(_env_file=None, **(values if hops else {}))  # type: ignore[call-arg]
    assert client_address(request_from("192.0.2.9", *headers), settings) == client


async def _stream_until_admitted(client: Any, headers: dict[str, str], admitted: asyncio.Event) -> list[str]:
    async with client.stream("POST", "/chat/stream", json=QUESTION, headers=headers) as response:
        assert response.status_code == 200
        names = []
        async for event in read_events(response):
            names.append(event.name)
            if event.name == "metadata":
                admitted.set()
        return names


async def test_concurrent_turns_are_capped_per_user(make_api: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = slow_answers(1.5)
    api = await make_api(make_chat_model(fake_openai), concurrent_turns_per_user=2)
    client, user = api.client(), api.headers(f"reader-{uuid.uuid4().hex[:8]}")
    admitted = [asyncio.Event(), asyncio.Event()]
    running = [asyncio.create_task(_stream_until_admitted(client, user, event)) for event in admitted]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in admitted)), 10)

    third = await client.post("/chat/stream", json=QUESTION, headers=user)
    assert third.status_code == 429 and third.json()["error"]["code"] == "too_many_turns"
    assert int(third.headers["retry-after"]) >= 1
    langserve = await client.post("/tutor/invoke", json={"input": QUESTION}, headers=user)
    assert langserve.status_code == 429
    # Someone else is not held back by this reader's turns.
    other = await client.post("/chat", json=QUESTION, headers=api.headers(f"other-{uuid.uuid4().hex[:6]}"))
    assert other.status_code == 200

    assert (await running[0])[-1] == "done"  # one finishes: a place is free again
    again = await client.post("/chat", json=QUESTION, headers=user)
    assert again.status_code == 200, again.text
    await running[1]


async def test_concurrent_anonymous_turns_are_capped_per_address(
    make_api: Any, fake_openai: FakeOpenAI
) -> None:
    fake_openai.responder = slow_answers(1.0)
    api = await make_api(
        make_chat_model(fake_openai),
        concurrent_turns_per_anonymous_client=1,
        trusted_proxy_header="X-Forwarded-For",
    )
    client, school = api.client(), {"X-Forwarded-For": address()}
    admitted = asyncio.Event()
    running = asyncio.create_task(_stream_until_admitted(client, school, admitted))
    await asyncio.wait_for(admitted.wait(), 10)
    refused = await client.post("/chat", json=QUESTION, headers=school)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_turns"
    assert (
        await client.post("/chat", json=QUESTION, headers={"X-Forwarded-For": address()})
    ).status_code == 200
    await running
    # A turn refused after admission (here: an anonymous translate) frees its place.
    translate = {"message": "translate", "mode": "translate", "content": "Hello"}
    assert (await client.post("/chat", json=translate, headers=school)).status_code == 401
    assert (await client.post("/chat", json=QUESTION, headers=school)).status_code == 200


async def test_the_concurrent_cap_is_exact_under_a_burst(make_api: Any) -> None:
    """Thirty admissions at once for one reader with a cap of 4: exactly 4 get in (the per-holder
    advisory lock makes count-then-insert atomic across connections), and released places reopen."""
    api = await make_api(concurrent_turns_per_user=4)
    db, settings, user = api.context.db, api.settings, f"reader-{uuid.uuid4().hex[:8]}"
    burst = await asyncio.gather(
        *(admit_turn(db, settings, user=user, client="10.9.9.9") for _ in range(30)), return_exceptions=True
    )
    slots = [slot for slot in burst if isinstance(slot, TurnSlot)]
    refused = [error for error in burst if isinstance(error, ApiError)]
    assert len(slots) == 4 and len(refused) == 26 and {e.code for e in refused} == {"too_many_turns"}
    for slot in slots:
        await slot.release()
    again = await admit_turn(db, settings, user=user, client="10.9.9.9")
    assert again.held
    await again.release()


async def test_a_turn_longer_than_its_lease_stays_counted(make_api: Any, fake_openai: FakeOpenAI) -> None:
    # The slot expires like the thread lease does, and the same heartbeat renews both: a long
    # answer must not free its place in the cap halfway (a crashed server's slots still expire).
    fake_openai.responder = slow_answers(3.5)
    api = await make_api(make_chat_model(fake_openai), concurrent_turns_per_user=1, turn_lease_seconds=1.5)
    client, user = api.client(), api.headers(f"reader-{uuid.uuid4().hex[:8]}")
    admitted = asyncio.Event()
    running = asyncio.create_task(_stream_until_admitted(client, user, admitted))
    await asyncio.wait_for(admitted.wait(), 10)
    await asyncio.sleep(2.5)  # past the first lease: only the renewal keeps the slot
    second = await client.post("/chat", json=QUESTION, headers=user)
    assert second.status_code == 429 and second.json()["error"]["code"] == "too_many_turns"
    assert (await running)[-1] == "done"
