"""bench/load.py's readers against a live server: conversations keep their thread, outcomes are
counted as the soak reports them (the soak itself: `uv run python bench/load.py --seconds 5
--conversations 3 --no-peer`, about a minute, stays out of the suite)."""

from __future__ import annotations

from typing import Any

import httpx

from bench.load_conversations import Outcome, drive, is_deliberate, tutor_turn
from tests.fakes import Error
from tests.fakes.fixtures import make_chat_model
from tests.graphs.conftest import tutor_responder

QUESTIONS = ["What does a ROS 2 topic do?", "And what is a node?"]


async def test_a_conversation_keeps_the_thread_the_server_returned(make_api: Any, fake_openai: Any) -> None:
    fake_openai.responder = tutor_responder()
    api = await make_api(make_chat_model(fake_openai))
    first = await tutor_turn(api.client(), None, QUESTIONS[0])
    second = await tutor_turn(api.client(), first.thread, QUESTIONS[1])
    assert first.kind == second.kind == "done" and first.thread and second.thread == first.thread
    messages = (await api.client().get(f"/threads/{first.thread}")).json()["messages"]
    assert len(messages) == 4 and first.ttft is not None and second.ttft is not None


async def test_readers_are_counted_as_the_soak_reports_them(make_api: Any, fake_openai: Any) -> None:
    fake_openai.responder = tutor_responder()
    api = await make_api(make_chat_model(fake_openai))
    new_threads: list[str | None] = []

    async def recorded(client: httpx.AsyncClient, thread: str | None, message: str) -> Outcome:
        outcome = await tutor_turn(client, thread, message)
        if thread is None:
            new_threads.append(outcome.thread)
        return outcome

    tally = await drive(
        api.url, recorded, readers=3, turns=2, seconds=2, turn_timeout=20, think=0,
        questions=QUESTIONS, first_token=0,
    )  # fmt: skip
    summary = tally.summary()
    assert summary["errors"] == summary["truncated"] == 0 and summary["turns_done"] >= 3
    assert len(tally.ttft) == summary["turns_done"]  # every answer streamed a token
    assert len(set(new_threads)) == len(new_threads) == summary["conversations_started"]


async def test_model_failures_are_counted_as_errors(make_api: Any, fake_openai: Any) -> None:
    fake_openai.responder = lambda request: Error(500)
    api = await make_api(make_chat_model(fake_openai))
    # 2 s: in a 0.5 s run on a loaded machine the second reader once asked nothing.
    tally = await drive(
        api.url, tutor_turn, readers=2, turns=2, seconds=2, turn_timeout=20, think=0,
        questions=QUESTIONS, first_token=0,
    )  # fmt: skip
    summary = tally.summary()
    assert summary["turns_done"] == 0 and summary["errors"] >= 2
    assert set(summary["error_kinds"]) == {"sse_error::model_unavailable"}


def test_only_an_admission_refusal_is_deliberate() -> None:
    assert is_deliberate(Outcome("http", status=503, code="server_busy", retry_after=1))
    assert not is_deliberate(Outcome("http", status=503, code="database_unavailable", retry_after=2))
    assert not is_deliberate(Outcome("http", status=503, code="server_busy"))  # no Retry-After
    assert not is_deliberate(Outcome("http", status=429, code="rate_limited", retry_after=5))
