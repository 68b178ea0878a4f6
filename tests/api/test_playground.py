"""LangServe's playground: served (or switched off), and a conversation typed into it continues."""

from __future__ import annotations

import asyncio
from typing import Any

import jsonpatch  # type: ignore[import-untyped]

from api.playground import closing_text
from tests.api.sse import collect

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


async def playground_run(api: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """One run as the playground makes it: the run state its patches build (`final_output`...), and
    the `thread` it ran on."""
    referer = {"Referer": f"{api.url}/tutor/playground/"}
    body = {"input": inputs, "config": {}}
    response, events = await collect(api.client(), "/tutor/stream_log", json=body, headers=referer)
    assert response.status_code == 200
    state: dict[str, Any] = {}
    for event in events:
        if event.name == "data":
            state = jsonpatch.apply_patch(state, event.data["ops"])
    return {**state, "thread": response.headers["x-thread-id"]}


async def test_the_playground_run_ends_with_the_answer_and_its_sources_as_text(make_api: Any) -> None:
    api = await make_api()  # extractive: no tokens stream, the answer comes whole
    state = await playground_run(api, QUESTION)
    text = state["final_output"]
    assert text == "".join(state["streamed_output"])
    answer, sources = text.split("\n\nSources\n")
    assert answer.strip() and "passages" not in text
    assert sources.startswith("[1] ") and f"{api.settings.book_base_url}/docs/" in sources


async def test_a_turn_that_cannot_run_says_why(make_api: Any) -> None:
    api = await make_api()  # no chat model: translation cannot run
    state = await playground_run(
        api, {"message": "Translate this", "mode": "translate", "content": "A node."}
    )
    assert "(needs_chat_model)" in state["final_output"] and "Sources" not in state["final_output"]
    # The refused turn leaves no thread behind (taken back once the response is sent).
    client = api.client()
    for _ in range(50):
        if (await client.get(f"/threads/{state['thread']}")).status_code == 404:
            break
        await asyncio.sleep(0.1)
    assert (await client.get(f"/threads/{state['thread']}")).status_code == 404


def test_a_checked_answer_that_differs_from_the_streamed_one_follows_it() -> None:
    source = {"title": "Nodes", "heading": "Topics", "url": "http://localhost:3000/docs/nodes#topics"}
    streamed = "Topics carry messages [1] [7]."  # [7]: a marker the model invented, dropped from the answer
    text = closing_text(streamed, {"answer": "Topics carry messages [1].", "sources": [source]})
    assert text == (
        "\n\nAnswer, citations checked:\nTopics carry messages [1]."
        "\n\nSources\n[1] Nodes › Topics\n    http://localhost:3000/docs/nodes#topics"
    )
    assert closing_text("Topics carry", {"answer": "Topics carry messages [1]."}) == " messages [1]."
