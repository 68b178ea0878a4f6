"""core.chat_models: the stall guard's rules, then the real client against the fake: the same chunks
as langchain-openai's own client, raw or typed, and a stalled reply abandoned."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from core.chat_models import ModelStalled, RawChunkAsyncOpenAI, TutorChatOpenAI, guard_stalls
from tests.fakes import FakeOpenAI, Json, Stall, Text, ToolCall
from tests.fakes.fixtures import make_chat_model


async def paced(gaps: list[float], closed: list[bool] | None = None) -> AsyncIterator[int]:
    """Yield 0, 1, ... each after its gap; note in `closed` when the generator is finalized."""
    try:
        for n, gap in enumerate(gaps):
            await asyncio.sleep(gap)
            yield n
    finally:
        if closed is not None:
            closed.append(True)


async def test_only_a_wait_longer_than_the_timeout_is_a_stall() -> None:
    # Eight waits of 0.05 s: longer than the 0.2 s timeout in total, each far below it.
    assert [n async for n in guard_stalls(paced([0.05] * 8), 0.2)] == list(range(8))

    closed: list[bool] = []
    got: list[int] = []
    started = time.monotonic()
    with pytest.raises(ModelStalled) as stalled:
        async for n in guard_stalls(paced([0.0, 0.0, 5.0], closed), 0.2):
            got.append(n)
    assert got == [0, 1] and stalled.value.chunks == 2 and closed == [True]
    assert 0.2 <= time.monotonic() - started < 1.5  # the deadline, not the source's 5 s
    assert isinstance(stalled.value, TimeoutError)  # reported as any model timeout


async def test_the_consumers_own_time_does_not_count() -> None:
    got = []
    async for n in guard_stalls(paced([0.0] * 3), 0.1):
        await asyncio.sleep(0.25)  # the consumer is slow, the source is not
        got.append(n)
    assert got == [0, 1, 2]


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def consume() -> list[int]:
        return [n async for n in guard_stalls(paced([0.0, 10.0]), 5.0)]

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_source_that_swallows_the_cancellation_is_still_a_stall() -> None:
    async def swallowing() -> AsyncIterator[int]:
        yield 0
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(5)

    with pytest.raises(ModelStalled):
        async for _ in guard_stalls(swallowing(), 0.1):
            pass
    await asyncio.sleep(0.01)  # and the task is not left with a cancellation pending
    assert (task := asyncio.current_task()) is not None and task.cancelling() == 0


async def test_no_timeout_is_no_guard() -> None:
    assert [n async for n in guard_stalls(paced([0.0, 0.3]), 0)] == [0, 1]
    assert [n async for n in guard_stalls(paced([0.0, 0.3]), None)] == [0, 1]


def chunk_fields(chunk: BaseMessage) -> dict[str, Any]:
    """Everything a chunk says but its id (a fresh run id per call)."""
    return chunk.model_dump(exclude={"id"})


class Topic(BaseModel):
    name: str
    carries: str


@pytest.mark.parametrize(
    "reply",
    [
        Text("Topics carry messages between nodes [1], and services answer requests [2].", token_delay=0.001),
        ToolCall("lookup", {"term": "topic", "page": 2}, id="call_lookup"),
    ],
    ids=["text", "tool call"],
)
async def test_the_same_chunks_in_the_same_order_as_the_library(fake_openai: FakeOpenAI, reply: Any) -> None:
    """Raw chunks and the stall guard change nothing a caller sees: every field of every chunk,
    usage and finish reason included, is what langchain-openai's own client gives."""
    model = make_chat_model(fake_openai)
    assert isinstance(model, TutorChatOpenAI)
    assert model.stream_chunk_timeout is None and model.stall_timeout == 120.0  # no per-chunk wait_for
    assert isinstance(model.async_client._client, RawChunkAsyncOpenAI)  # plain streams: raw chunks
    assert type(model.root_async_client) is openai.AsyncOpenAI  # structured streams: typed chunks
    library = ChatOpenAI(model="gpt-4o-mini", base_url=fake_openai.base_url, api_key="test", max_retries=0)  # type: ignore[arg-type]
    assert library.stream_chunk_timeout  # what the guard replaces: on by default
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    streamed = []
    for chat in (model, library):
        fake_openai.script(reply)
        runnable = chat.bind_tools([tool]) if isinstance(reply, ToolCall) else chat
        chunks = runnable.astream("What is a topic?", stream_usage=True)
        streamed.append([chunk_fields(c) async for c in chunks])
    assert streamed[0] == streamed[1] and len(streamed[0]) > 3
    assert any(c["usage_metadata"] for c in streamed[0])  # the usage chunk came through too
    if isinstance(reply, Text):
        assert "".join(c["content"] for c in streamed[0]) == reply.content
    else:
        calls = [call for c in streamed[0] for call in c["tool_call_chunks"]]
        arguments = json.loads("".join(c["args"] for c in calls))
        assert calls[0]["name"] == "lookup" and arguments == reply.arguments


# langchain-openai's own dump of the SDK's parsed stream warns the same with the library's client.
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
async def test_a_structured_reply_still_streams_through_the_typed_client(fake_openai: FakeOpenAI) -> None:
    model = make_chat_model(fake_openai)
    fake_openai.script(Json({"name": "topic", "carries": "messages"}, token_delay=0.001))
    structured = model.with_structured_output(Topic, method="json_schema")
    parsed = [chunk async for chunk in structured.astream("What is a topic?")]
    assert parsed[-1] == Topic(name="topic", carries="messages")
    assert fake_openai.requests[-1].body["response_format"]["type"] == "json_schema"


async def test_a_reply_that_only_keeps_alive_is_abandoned_at_the_stall_timeout(
    fake_openai: FakeOpenAI,
) -> None:
    model = make_chat_model(fake_openai, timeout=3, stall_timeout=0.5)
    fake_openai.script(Stall(after_tokens=2, seconds=8, every=0.05))
    texts: list[str] = []
    started = time.monotonic()
    with pytest.raises(ModelStalled):
        async for chunk in model.astream("What is a topic?"):  # type: ignore[union-attr]
            texts.append(str(chunk.content))
    # Keep-alives every 0.05 s: the 3 s read timeout never fires (the stall lasts 8 s); the guard
    # does, at 0.5 s.
    assert time.monotonic() - started < 2.5 and "".join(texts).split() == ["this", "answer"]
    assert fake_openai.requests[-1].wait_done(5) and fake_openai.requests[-1].client_disconnected
