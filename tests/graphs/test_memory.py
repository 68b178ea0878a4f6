"""Memory: a bounded window plus summary, linear storage, the transcript, titles, cleared inputs."""

from __future__ import annotations

import uuid
from typing import Any

from core.db import Database
from core.stores.threads import stored_bytes
from tests.graphs.conftest import turn, tutor_responder

SELECTION = "Quality of service profiles decide whether messages are kept, dropped or resent when links fail."


async def transcript(db: Database, thread: str) -> list[dict[str, Any]]:
    async with db.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT role, content, sources FROM thread_messages WHERE thread_id = %s ORDER BY seq", (thread,)
        )
        return list(await cur.fetchall())


async def test_window_is_bounded_and_older_turns_are_summarised(make_tutor) -> None:  # type: ignore[no-untyped-def]
    graph, services = await make_tutor(window_messages=4)
    thread = str(uuid.uuid4())
    for n in range(5):
        await turn(graph, thread, message=f"Question number {n} about this?", selected_text=SELECTION)
    state = (await graph.aget_state({"configurable": {"thread_id": thread}})).values
    assert len(state["messages"]) == 4 and state["turns"] == 5
    assert "Question number 0" in state["summary"] and "Question number 4" not in state["summary"]
    assert len(await transcript(services.db, thread)) == 10  # the full transcript is kept


async def test_checkpoint_storage_stays_linear_over_200_turns(make_tutor) -> None:  # type: ignore[no-untyped-def]
    graph, services = await make_tutor()
    thread = str(uuid.uuid4())
    sizes = {}
    for n in range(1, 201):
        await turn(
            graph, thread, message=f"Turn {n}: what does this say about links?", selected_text=SELECTION
        )
        if n in (10, 100, 200):
            sizes[n] = (await stored_bytes(services.db, thread))["checkpoint"]
    rows = await transcript(services.db, thread)
    transcript_size = sum(len(r["content"].encode()) + len(str(r["sources"]).encode()) for r in rows)
    assert len(rows) == 400
    assert sizes[200] <= 3 * transcript_size
    assert sizes[200] < 2 * sizes[10]  # bounded state: storage does not grow with the thread


async def test_reloaded_thread_has_the_same_sources_and_a_title(make_tutor, chat_provider) -> None:  # type: ignore[no-untyped-def]
    chat_provider.fake.responder = tutor_responder(answer="Topics stream messages [1]. Services answer [2].")
    graph, services = await make_tutor(chat_provider.model())
    thread = str(uuid.uuid4())
    result = await turn(graph, thread, user="alice", message="What does a ROS 2 topic do?", mode="ask")
    rows = await transcript(services.db, thread)
    assert [r["role"] for r in rows] == ["user", "assistant"]
    assert rows[1]["sources"] == result["sources"] and rows[1]["content"] == result["answer"]
    state = (await graph.aget_state({"configurable": {"thread_id": thread}})).values
    assert state["messages"][-1].additional_kwargs["sources"] == result["sources"]
    assert result["title"] == "ROS 2 topics"
    async with services.db.pool.connection() as conn:
        owner = await (
            await conn.execute("SELECT user_id, title FROM threads WHERE thread_id = %s", (thread,))
        ).fetchone()
    assert owner == {"user_id": "alice", "title": "ROS 2 topics"}


async def test_offline_title_and_cleared_inputs(make_tutor) -> None:  # type: ignore[no-untyped-def]
    graph, _ = await make_tutor()
    thread = str(uuid.uuid4())
    first = await turn(
        graph,
        thread,
        message="What is a quality of service profile in ROS 2 exactly?",
        selected_text=SELECTION,
        page="module-1-ros2/ros2-communication",
    )
    assert first["title"] == "What is a quality of service profile in…"
    state = (await graph.aget_state({"configurable": {"thread_id": thread}})).values
    assert state["selected_text"] is None and state["page"] is None and state["passages"] == []
    assert state["pinned_selection"] == SELECTION
    second = await turn(graph, thread, message="What does a ROS 2 topic do?")
    assert second["route"] == "ask"  # the previous selection does not leak into this turn
