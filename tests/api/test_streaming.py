"""`api.streaming`'s pieces on their own: the token pacer, and pacing in the run's task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk

from api.streaming import TokenPacer, TurnRun
from chains.answer import ANSWER_TAG


def test_the_first_text_goes_out_at_once_and_later_text_waits_for_the_interval() -> None:
    pacer = TokenPacer(0.05)
    assert pacer.add("Hello", now=10.0) == "Hello"  # first token: never held
    assert pacer.add(" wor", now=10.01) == "" and pacer.add("ld", now=10.03) == ""
    assert pacer.due_at == 10.05
    assert pacer.add(".", now=10.05) == " world."  # everything held, in order, as one event
    assert pacer.take(now=10.2) == ""  # nothing held: no event, and the interval does not restart
    assert pacer.add("!", now=10.2) == "!"


def test_no_interval_sends_every_token() -> None:
    pacer = TokenPacer(0)
    assert [pacer.add(token, now=1.0) for token in ("a", "b", "c")] == ["a", "b", "c"]


def test_empty_text_is_never_an_event() -> None:
    pacer = TokenPacer(0.05)
    assert pacer.add("", now=1.0) == "" and pacer.add("x", now=1.0) == "x"


def token(text: str) -> tuple[str, Any]:
    """One `messages` item of the answering model call, as LangGraph streams it."""
    return ("messages", (AIMessageChunk(content=text), {"tags": [ANSWER_TAG]}))


async def _run(items: list[tuple[str, Any] | float | Exception]) -> AsyncIterator[tuple[str, Any]]:
    """Yield the items; a number is a pause (seconds), an exception is raised."""
    for item in items:
        if isinstance(item, float):
            await asyncio.sleep(item)
        elif isinstance(item, Exception):
            raise item
        else:
            yield item


async def collect(run: TurnRun, consumer_pause: float = 0.0) -> list[tuple[str, Any, float]]:
    loop, seen = asyncio.get_running_loop(), []
    started = loop.time()
    async for kind, value in run.items():
        seen.append((kind, value, loop.time() - started))
        await asyncio.sleep(consumer_pause)
    await run.aclose()
    return seen


async def test_tokens_are_paced_in_the_runs_task_and_held_text_goes_out_when_the_model_pauses() -> None:
    update = ("updates", {"answer": {"sources": []}})
    items = [token("a"), token("b"), token("c"), 0.3, token("d"), update, token("e")]
    seen = await collect(TurnRun(_run(items), 0.05))
    # "a" at once; "bc" held and sent by the timer ~0.05 s later, long before the source's "d";
    # "d" held until the node update, which it precedes; "e" flushed at the end.
    assert [(kind, value) for kind, value, _ in seen] == [
        ("token", "a"),
        ("token", "bc"),
        ("token", "d"),
        ("item", update),
        ("token", "e"),
    ]
    assert 0.03 < seen[1][2] < 0.25


async def test_text_before_a_failure_goes_out_before_the_error() -> None:
    run = TurnRun(_run([token("Topics"), token(" carry"), RuntimeError("dropped")]), 0.05)
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="dropped"):
        async for _kind, value in run.items():
            seen.append(value)
    await run.aclose()
    assert "".join(seen) == "Topics carry"  # " carry" came within the interval: held, then flushed


async def test_a_busy_response_gets_the_waiting_text_as_one_event() -> None:
    items = [token("a"), 0.06, token("b"), 0.06, token("c"), 0.06, token("d")]
    seen = await collect(TurnRun(_run(items), 0.05), consumer_pause=0.3)
    assert [value for _, value, _ in seen] == ["a", "bcd"]


async def test_no_interval_hands_over_every_token() -> None:
    seen = await collect(TurnRun(_run([token("a"), 0.01, token("b"), 0.01, token("c")]), 0))
    assert [value for _, value, _ in seen] == ["a", "b", "c"]


async def test_closing_cancels_a_pending_timer() -> None:
    run = TurnRun(_run([token("a"), token("b"), 5.0]), 0.05)
    await asyncio.sleep(0.01)  # "a" sent, "b" held: the timer is set
    assert run.alarm is not None
    alarm = run.alarm
    await run.aclose()
    assert alarm.cancelled() and run.task.done()
