"""LangServe's playground: served (or switched off), and a conversation typed into it continues."""

from __future__ import annotations

from typing import Any

QUESTION = {"message": "What does a ROS 2 topic do?"}


async def test_playground_conversation_continues_through_its_cookie(make_api: Any) -> None:
    api = await make_api()
    client = api.client()
    page = await client.get("/tutor/playground/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    # What the playground's page sends: stream_log, no token, no thread header, its page as Referer.
    referer = {"Referer": f"{api.url}/tutor/playground/"}
    first = await client.post("/tutor/stream_log", json={"input": QUESTION, "config": {}}, headers=referer)
    assert first.status_code == 200
    thread = first.headers["x-thread-id"]
    assert "tutor_thread=" in first.headers["set-cookie"] and "HttpOnly" in first.headers["set-cookie"]
    follow = {"input": {"message": "and what is a service?"}, "config": {}}
    second = await client.post("/tutor/stream_log", json=follow, headers=referer)  # cookie sent back
    assert second.headers["x-thread-id"] == thread
    messages = (await client.get(f"/threads/{thread}")).json()["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == [
        QUESTION["message"],
        "and what is a service?",
    ]


async def test_other_clients_do_not_get_the_cookie_thread(make_api: Any) -> None:
    api = await make_api()
    client = api.client()
    first = await client.post("/tutor/invoke", json={"input": QUESTION})
    second = await client.post("/tutor/invoke", json={"input": QUESTION})
    assert "set-cookie" not in first.headers
    assert first.headers["x-thread-id"] != second.headers["x-thread-id"]


async def test_playground_can_be_switched_off(make_api: Any) -> None:
    api = await make_api(playground_enabled=False)
    client = api.client()
    assert (await client.get("/tutor/playground/")).status_code == 404
    assert (await client.post("/tutor/stream_log", json={"input": QUESTION})).status_code == 404
    assert (await client.post("/tutor/batch", json={"inputs": [QUESTION]})).status_code == 404
    assert (await client.post("/tutor/invoke", json={"input": QUESTION})).status_code == 200
