"""The chat model `make_chat_model` builds for `openai:`: langchain-openai's, made cheaper per token.

Two things cost more per streamed token than they need to, and both are replaced with their
outcome unchanged (the same chunks, in the same order; `tests/core/test_chat_models.py` compares
them with the library's own client).

**Chunks stay the dicts they arrived as.** For every chunk of a streamed reply the openai SDK
builds a typed `ChatCompletionChunk` (a recursive `construct` plus a runtime Protocol check), and
langchain-openai's first step is to turn it back into a dict (`model_dump`): about a third of the
CPU the client spends per streamed answer (~33 of ~100 ms per 200-token stream on the benchmark
machine). `RawChunkAsyncOpenAI` hands the SDK's parsed JSON through as it is, which
langchain-openai accepts as it stands (`if not isinstance(chunk, dict)`). Only the plain streaming
path uses it (`async_client`): structured streams go through `root_async_client`
(`beta.chat.completions.stream`), which needs the typed chunks, and replies asked for whole are
not chunks at all.

**The stall guard.** A streamed reply can stall with its connection alive: the provider keeps
sending SSE keep-alive comments but no content, so the HTTP read timeout (`LLM_TIMEOUT`, between
any two bytes) never fires and the turn would hold its place until the reader gave up.
langchain-openai guards against this (`stream_chunk_timeout`, 120 s) by waiting for every chunk
through `asyncio.wait_for`: a task and a timer per token, ~12 ms of CPU per 200-token answer on the
benchmark machine, 4-5% of a whole streamed turn (README, "CPU per turn"). `guard_stalls` gives the
same guarantee (`LLM_STALL_TIMEOUT`, content silence only) with one timer per timeout period, and
the chunks, their order and their callbacks are the library's own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Self, TypeVar

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletionChunk
from pydantic import Field, model_validator

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


class RawChunkAsyncOpenAI(openai.AsyncOpenAI):
    """`AsyncOpenAI` whose streamed chat-completion chunks are the parsed JSON, not typed models."""

    def _process_response_data(self, *, data: object, cast_to: type[Any], response: Any) -> Any:
        if cast_to is ChatCompletionChunk and isinstance(data, dict):
            return data
        return super()._process_response_data(data=data, cast_to=cast_to, response=response)


class TutorChatOpenAI(ChatOpenAI):
    """`ChatOpenAI` streaming raw chunks, guarded by `guard_stalls` instead of a per-chunk `wait_for`."""

    stream_chunk_timeout: float | None = Field(default=None, exclude=True)  # replaced by stall_timeout
    stall_timeout: float | None = Field(default=120.0, exclude=True)
    """Seconds a stream may go without a chunk (`LLM_STALL_TIMEOUT`); None or 0: unguarded."""

    @model_validator(mode="after")
    def _stream_raw_chunks(self) -> Self:
        """Answer plain streams through a `RawChunkAsyncOpenAI` twin of the library's client.

        The SDK has no public switch for a stream's chunk type, so the twin is `copy()` (the same
        settings, credentials and connection pool) with its class set to the subclass, which only
        overrides `_process_response_data`. `root_async_client` stays the library's.
        """
        root = self.root_async_client
        if type(root) is openai.AsyncOpenAI:  # built by ChatOpenAI's validator (not passed in)
            twin = root.copy()
            twin.__class__ = RawChunkAsyncOpenAI
            self.async_client = twin.chat.completions
        return self

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
