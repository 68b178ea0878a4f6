"""POST /chat and POST /chat/stream: answers, events, threads carried over, errors."""

from __future__ import annotations

from typing import Any

from tests.api.sse import collect
from tests.fakes.fixtures import make_chat_model
from tests.graphs.conftest import tutor_responder

QUESTION = {"message": "What does a ROS 2 topic do?"}


async def test_health(make_api: Any) -> None:
    api = await make_api()
    response = await api.client().get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["vector_store"] == "ok"
    assert body["chat_model"] == "extractive" and body["index"]["chunks"] > 100


async def test_chat_extractive_answers_with_sources(make_api: Any) -> None:
    api = await make_api()
    client = api.client()
    response = await client.post("/chat", json=QUESTION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["route"] == "ask" and body["sources"] and "[1]" in body["response"]
    assert body["thread_id"] == body["session_id"] == response.headers["x-thread-id"]
    assert response.headers["x-request-id"]


async def test_chat_stream_event_sequence(make_api: Any, fake_openai: Any) -> None:
    fake_openai.responder = tutor_responder(answer="Topics carry streams of messages [1].")
    api = await make_api(make_chat_model(fake_openai))
    response, events = await collect(api.client(), "/chat/stream", json=QUESTION)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    names = [event.name for event in events]
    assert names[0] == "metadata" and names[-1] == "done", names
    assert names.count("sources") == 1 and names.index("sources") > names.index("token")
    meta = events[0].data
    assert meta["route"] == "ask" and meta["thread_id"] == response.headers["x-thread-id"]
    streamed = "".join(event.data["delta"] for event in events if event.name == "token")
    done = events[-1].data
    assert streamed == "Topics carry streams of messages [1]." == done["answer"]
    assert done["sources"] == events[names.index("sources")].data["sources"]
    assert done["thread_id"] == meta["thread_id"]
