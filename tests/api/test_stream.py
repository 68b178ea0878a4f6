"""The widget's stream beyond the happy path: keep-alives, client disconnects, model failures,
routes that need a chat model, rewrites with protected spans."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tests.api.sse import collect, read_events
from tests.fakes import Error, Text
from tests.fakes.fixtures import make_chat_model
from tests.graphs.conftest import requests_like, tutor_responder

QUESTION = {"message": "What does a ROS 2 topic do?", "mode": "ask"}


async def test_keep_alive_comments_while_the_model_thinks(make_api: Any, fake_openai: Any) -> None:
    fake_openai.responder = lambda request: Text("Late answer [1].", first_token_delay=1.2)
    api = await make_api(make_chat_model(fake_openai), sse_keepalive_seconds=0.3)
    async with api.client().stream("POST", "/chat/stream", json=QUESTION) as response:
        events = [event async for event in read_events(response)]
    names = [event.name for event in events]
    assert names.count("comment") >= 2 and all(e.data == "keep-alive" for e in events if e.name == "comment")
    assert names[-1] == "done"


async def test_client_disconnect_cancels_the_model_call(make_api: Any, fake_openai: Any) -> None:
    long_answer = " ".join(["word"] * 200)
    fake_openai.responder = lambda request: Text(long_answer, token_delay=0.05)
    api = await make_api(make_chat_model(fake_openai), thread_busy_wait=0)
    thread = str(uuid.uuid4())
    client = api.client(headers={"X-Thread-Id": thread})
    async with client.stream("POST", "/chat/stream", json=QUESTION) as response:
        async for event in read_events(response):
            if event.name == "token":
                break  # the reader closes the tab after the first token
    # (polled from a thread: the server runs on this test's event loop)
    disconnected = lambda fake: fake.chat_requests[-1].client_disconnected  # noqa: E731
    assert await asyncio.to_thread(fake_openai.wait_for, disconnected, 5)
    assert not fake_openai.chat_requests[-1].completed
    # The thread was given back at once, and the abandoned turn left no half-written messages.
    fake_openai.responder = tutor_responder()
    for _ in range(20):
        again = await client.post("/chat", json=QUESTION)
        if again.status_code != 409:
            break
        await asyncio.sleep(0.1)
    assert again.status_code == 200
    messages = (await client.get(f"/threads/{thread}")).json()["messages"]
    assert len(messages) == 2


async def test_model_failure_is_an_error_event_then_503(make_api: Any, fake_openai: Any) -> None:
    fake_openai.responder = lambda request: Error(500)
    api = await make_api(make_chat_model(fake_openai))
    response, events = await collect(api.client(), "/chat/stream", json=QUESTION)
    assert response.status_code == 200
    assert [e.name for e in events][-1] == "error"
    assert events[-1].data["code"] == "model_unavailable"
    response = await api.client().post("/chat", json=QUESTION)
    assert response.status_code == 503 and response.json()["error"]["code"] == "model_unavailable"
    fake_openai.problems.clear()


async def test_rate_limited_model_is_retried(make_api: Any, fake_openai: Any) -> None:
    replies = iter([Error(429, retry_after=0), Error(429, retry_after=0)])
    fake_openai.responder = lambda request: next(replies, None) or tutor_responder()(request)
    api = await make_api(make_chat_model(fake_openai, max_retries=2))
    response = await api.client().post("/chat", json=QUESTION)
    assert response.status_code == 200, response.text
    assert len(fake_openai.chat_requests) >= 3


async def test_rewrite_routes_need_a_chat_model(make_api: Any) -> None:
    api = await make_api()
    body = {"message": "translate this", "mode": "translate", "content": "A node is a process."}
    # Refused before the stream starts (the rewrite policy's cheap rules): a status, like /chat.
    response, events = await collect(api.client(), "/chat/stream", json=body)
    assert events == [] and response.status_code == 503
    assert response.json()["error"]["code"] == "needs_chat_model"
    response = await api.client().post("/chat", json=body)
    assert response.status_code == 503 and response.json()["error"]["code"] == "needs_chat_model"


async def test_translation_streams_with_protected_spans_restored(make_api: Any, fake_openai: Any) -> None:
    fake_openai.responder = tutor_responder(rewrite="چلائیں ⟦I1⟧ اور دیکھیں ⟦U1⟧")
    api = await make_api(make_chat_model(fake_openai))
    content = "Run `ros2 topic list` and see https://docs.ros.org/en/rolling/ for more."
    body = {"message": "translate", "mode": "translate", "content": content, "target_language": "ur"}
    reader = api.headers(f"reader-{uuid.uuid4().hex[:8]}")  # rewrites need a signed-in reader
    _, events = await collect(api.client(), "/chat/stream", json=body, headers=reader)
    streamed = "".join(e.data["delta"] for e in events if e.name == "token")
    assert "⟦" not in streamed and "`ros2 topic list`" in streamed
    done = events[-1].data
    assert done["language"] == "ur" and "`ros2 topic list`" in done["answer"]
    assert "https://docs.ros.org/en/rolling/" in done["answer"]


NODE_SELECTION = (
    "A node is a single, focused participant in a ROS 2 system, typically responsible for one job such "
    "as reading a camera, estimating the robot's position or driving the motors of one leg. Nodes are "
    "usually separate operating-system processes, although several nodes can share a process when "
    "performance matters."
)
SELECTION_TURNS = [  # (body, grounded): one the selection answers, one it does not
    ({"message": "Can several nodes run in one process?", "selected_text": NODE_SELECTION}, True),
    (
        {
            "message": "What Quality of Service settings does a subscriber need?",
            "selected_text": NODE_SELECTION,
        },
        False,
    ),
]
EVENT_ORDER = ["metadata", "token", "sources", "done"]  # the same for every route and mode


def event_order(events: list[Any]) -> list[str]:
    """Event names with runs of `token` (however the deltas were coalesced) counted once."""
    names = [event.name for event in events]
    return [name for i, name in enumerate(names) if i == 0 or name != "token" or names[i - 1] != "token"]


async def test_extractive_answers_stream_as_tokens(make_api: Any) -> None:
    api = await make_api()
    client = api.client()
    for body, grounded in [(QUESTION, True), *SELECTION_TURNS]:
        _, events = await collect(client, "/chat/stream", json=body)
        assert event_order(events) == EVENT_ORDER, [e.name for e in events]
        done = events[-1].data
        streamed = "".join(event.data["delta"] for event in events if event.name == "token")
        assert streamed == done["answer"] and done["grounded"] is grounded
        assert events[-2].data["sources"] == done["sources"]


async def test_structured_selection_replies_stream_as_tokens(make_api: Any, fake_openai: Any) -> None:
    api = await make_api(make_chat_model(fake_openai))
    for (body, grounded), supported in zip(SELECTION_TURNS, (True, False), strict=True):
        fake_openai.responder = tutor_responder(
            selection_supported=supported, selection_answer="Yes. Several nodes can share a process."
        )
        _, events = await collect(api.client(), "/chat/stream", json=body)
        assert event_order(events) == EVENT_ORDER, [e.name for e in events]
        streamed = "".join(event.data["delta"] for event in events if event.name == "token")
        assert streamed == events[-1].data["answer"] and "{" not in streamed  # the answer, not the JSON
        assert events[-1].data["grounded"] is grounded


async def test_tokens_are_joined_per_interval_and_the_first_is_not_held(
    make_api: Any, fake_openai: Any
) -> None:
    words = [f"w{i}" for i in range(40)]
    fake_openai.responder = tutor_responder(answer=" ".join(words) + " [1].", answer_token_delay=0.01)
    api = await make_api(make_chat_model(fake_openai), token_event_interval=0.2)
    async with api.client().stream("POST", "/chat/stream", json=QUESTION) as response:
        arrivals = [
            (event, time.monotonic()) async for event in read_events(response) if event.name == "token"
        ]
    deltas = [event.data["delta"] for event, _ in arrivals]
    assert "".join(deltas).split()[:40] == words  # every token, in order
    assert 2 <= len(deltas) <= 6  # ~0.4 s of tokens at one event per 0.2 s, not 41 events
    assert deltas[0] == "w0"  # the first token went out alone, at once
    assert arrivals[1][1] - arrivals[0][1] >= 0.15  # the next waited for the interval


async def test_every_token_is_an_event_with_no_interval(make_api: Any, fake_openai: Any) -> None:
    fake_openai.responder = tutor_responder(answer="one two three four five [1].", answer_token_delay=0.05)
    api = await make_api(make_chat_model(fake_openai), token_event_interval=0)
    _, events = await collect(api.client(), "/chat/stream", json=QUESTION)
    assert len([e for e in events if e.name == "token"]) >= 5


async def test_only_the_answer_call_streams(make_api: Any, fake_openai: Any) -> None:
    """Calls no reader sees (classifier, title) ask for the whole reply: streaming them costs CPU."""
    fake_openai.responder = tutor_responder()
    api = await make_api(make_chat_model(fake_openai))
    _, events = await collect(api.client(), "/chat/stream", json={"message": QUESTION["message"]})
    assert events[-1].name == "done" and events[-1].data["title"] == "ROS 2 topics"
    answers = requests_like(fake_openai, "patient tutor for a textbook")
    others = [r for r in fake_openai.chat_requests if r not in answers]
    assert len(answers) == 1 and answers[0].stream
    assert {"You route a reader", "short title"} <= {
        m for r in others for m in ("You route a reader", "short title") if m in r.system_prompt
    }
    assert not any(r.stream for r in others)
