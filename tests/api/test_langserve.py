"""LangServe at /tutor: RemoteRunnable (sync and async, streaming and events) against the live
server, thread memory through X-Thread-Id, and configurable injection ignored."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from langserve import RemoteRunnable

from tests.fakes.fixtures import make_chat_model
from tests.graphs.conftest import requests_like, tutor_responder

QUESTION = {"message": "What does a ROS 2 topic do?"}


def remote(api: Any, user: str | None, thread: str) -> RemoteRunnable:
    return RemoteRunnable(f"{api.url}/tutor", headers=api.headers(user, thread), timeout=30)


async def test_remote_runnable_all_call_styles_share_one_thread(make_api: Any, fake_openai: Any) -> None:
    fake_openai.responder = tutor_responder()
    api = await make_api(make_chat_model(fake_openai))
    thread = str(uuid.uuid4())
    tutor = remote(api, "alice", thread)

    first = await asyncio.to_thread(tutor.invoke, QUESTION)  # sync client: off the server's loop
    assert first["thread_id"] == thread and first["route"] == "ask" and first["sources"]
    second = await tutor.ainvoke({"message": "and how is that different from a service?"})
    assert second["thread_id"] == thread
    sync_chunks = await asyncio.to_thread(lambda: list(tutor.stream({"message": "What is a node?"})))
    assert any("answer" in chunk for chunk in sync_chunks if isinstance(chunk, dict))
    chunks = [chunk async for chunk in tutor.astream({"message": "What is a launch file?"})]
    assert chunks
    tokens = [
        event["data"]["chunk"].content
        async for event in tutor.astream_events({"message": "What is a topic?"}, version="v2")
        if event["event"] == "on_chat_model_stream" and "tutor-answer" in event.get("tags", [])
    ]
    assert "".join(tokens) == "Topics carry streams of messages [1]."

    # The follow-up saw the first turn: the condense call got the history.
    condense = requests_like(fake_openai, "standalone search query")
    assert any("What does a ROS 2 topic do?" in str(r.messages) for r in condense)
    detail = (await api.client().get(f"/threads/{thread}", headers=api.headers("alice"))).json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"] * 5


async def test_configurable_from_the_client_is_ignored(make_api: Any) -> None:
    api = await make_api()
    client = api.client()
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    alice_thread, bob_thread = str(uuid.uuid4()), str(uuid.uuid4())
    response = await client.post(
        "/chat", json={**QUESTION, "thread_id": bob_thread}, headers=api.headers(bob)
    )
    assert response.status_code == 200
    # Alice names Bob's thread and a user id in configurable: both are overwritten by the server.
    body = {"input": QUESTION, "config": {"configurable": {"thread_id": bob_thread, "user_id": bob}}}
    response = await client.post("/tutor/invoke", json=body, headers=api.headers(alice, alice_thread))
    assert response.status_code == 200, response.text
    assert response.json()["output"]["thread_id"] == alice_thread
    bobs = (await client.get(f"/threads/{bob_thread}", headers=api.headers(bob))).json()
    assert len(bobs["messages"]) == 2  # untouched
    alices = (await client.get("/threads", headers=api.headers(alice))).json()
    assert [t["thread_id"] for t in alices] == [alice_thread]


async def test_thread_created_when_absent_and_returned(make_api: Any) -> None:
    api = await make_api()
    response = await api.client().post("/tutor/invoke", json={"input": QUESTION})
    assert response.status_code == 200, response.text
    thread = response.headers["x-thread-id"]
    assert response.json()["output"]["thread_id"] == thread
    assert (await api.client().get(f"/threads/{thread}")).status_code == 200  # anonymous: id holder


async def test_invalid_input_is_422_in_our_shape(make_api: Any) -> None:
    api = await make_api()
    response = await api.client().post("/tutor/invoke", json={"input": {"message": ""}})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    response = await api.client().post("/tutor/invoke", json={"input": {"msg": "hi"}})
    assert response.status_code == 422
    assert "Traceback" not in response.text
