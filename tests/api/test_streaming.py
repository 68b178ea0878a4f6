"""`api.streaming`'s pieces on their own: the token pacer and the run's wake-ups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from api.streaming import TaskStream, TokenPacer


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


async def _slow(items: list[str], pause: float) -> AsyncIterator[str]:
    for item in items:
        yield item
        await asyncio.sleep(pause)


async def test_a_wake_up_arrives_while_the_source_is_silent() -> None:
    run = TaskStream(_slow(["a", "b"], pause=0.5))
    loop = asyncio.get_running_loop()
    seen: list[tuple[str | None, float]] = []
    started = loop.time()
    async for item in run.items():
        seen.append((item, loop.time() - started))
        if item == "a":
            run.wake_at(loop.time() + 0.1)
            run.wake_at(loop.time() + 0.2)  # one wake-up at a time: the first one set stands
    await run.aclose()
    assert [item for item, _ in seen] == ["a", None, "b"]
    assert 0.08 < seen[1][1] < 0.4  # woken after 0.1 s, long before the source's next item


async def test_closing_cancels_a_pending_wake_up() -> None:
    run = TaskStream(_slow(["a"], pause=0))
    run.wake_at(asyncio.get_running_loop().time() + 0.05)
    await run.aclose()
    await asyncio.sleep(0.1)
    assert run.alarm is not None and run.alarm.cancelled()
