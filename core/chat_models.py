"""The chat model `make_chat_model` builds for `openai:`: langchain-openai's, with a cheaper stall guard.

A streamed reply can stall with its connection alive: the provider keeps sending SSE keep-alive
comments but no content, so the HTTP read timeout (`LLM_TIMEOUT`, between any two bytes) never
fires and the turn would hold its place until the reader gave up. langchain-openai guards against
this (`stream_chunk_timeout`, 120 s) by waiting for every chunk through `asyncio.wait_for`: a task
and a timer per token, ~12 ms of CPU per 200-token answer on the benchmark machine, 4-5% of a
whole streamed turn (README, "CPU per turn"). `guard_stalls` gives the same guarantee
(`LLM_STALL_TIMEOUT`, content silence only) with one timer per timeout period, and the chunks,
their order and their callbacks are the library's own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI
from pydantic import Field

T = TypeVar("T")
_END: Any = object()  # the source is exhausted


class ModelStalled(TimeoutError):
    """A streamed reply sent no content for the stall timeout (keep-alives do not count).

    A `TimeoutError`, so the API reports it as every other model timeout (core.providers).
    """

    def __init__(self, seconds: float, chunks: int) -> None:
        super().__init__(f"The model sent no content for {seconds:g} s (after {chunks} chunks).")
        self.seconds, self.chunks = seconds, chunks


async def guard_stalls(source: AsyncIterator[T], seconds: float | None) -> AsyncIterator[T]:
    """Yield from `source`; raise `ModelStalled` when waiting for its next item takes `seconds`.

    Only time spent waiting on `source` counts, not time the consumer spends on an item. One
    timer checks the current wait when it is due and re-arms itself for that wait's deadline, so
    an item costs two clock reads instead of `asyncio.wait_for`'s task and timer. On a stall the
    consuming task is cancelled out of its wait (closing the provider's response, as any
    cancellation does) and the cancellation becomes `ModelStalled`; a cancellation from elsewhere
    stays a cancellation. `seconds` None or 0: no guard.
    """
    if not seconds or seconds <= 0:
        async for item in source:
            yield item
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Task[Any] | None = None  # the task waiting for the next item
    waiting_since: float | None = None  # None while the consumer holds an item
    stalled, chunks = False, 0
    timer: asyncio.TimerHandle | None = None

    def check() -> None:
        nonlocal timer, stalled
        now = loop.time()
        if waiter is not None and waiting_since is not None and now - waiting_since >= seconds:
            stalled = True
            waiter.cancel()
        else:
            timer = loop.call_at((now if waiting_since is None else waiting_since) + seconds, check)

    timer = loop.call_at(loop.time() + seconds, check)
    items = aiter(source)
    try:
        while True:
            waiter, waiting_since = asyncio.current_task(), loop.time()
            try:
                item = await anext(items)
            except StopAsyncIteration:
                item = _END
            except asyncio.CancelledError:
                if stalled and waiter is not None and waiter.uncancel() == 0:
                    raise ModelStalled(seconds, chunks) from None
                raise
            waiting_since = None
            if stalled:  # the source swallowed the cancellation
                if waiter is not None:
                    waiter.uncancel()
                raise ModelStalled(seconds, chunks)
            if item is _END:
                return
            chunks += 1
            yield item
    finally:
        if timer is not None:
            timer.cancel()
        close = getattr(items, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


class TutorChatOpenAI(ChatOpenAI):
    """`ChatOpenAI` whose streams are guarded by `guard_stalls` instead of a per-chunk `wait_for`."""

    stream_chunk_timeout: float | None = Field(default=None, exclude=True)  # replaced by stall_timeout
    stall_timeout: float | None = Field(default=120.0, exclude=True)
    """Seconds a stream may go without a chunk (`LLM_STALL_TIMEOUT`); None or 0: unguarded."""

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        stream = super()._astream(messages, stop=stop, run_manager=run_manager, **kwargs)
        async for chunk in guard_stalls(stream, self.stall_timeout):
            yield chunk
