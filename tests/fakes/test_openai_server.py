"""FakeOpenAI driven by the real langchain-openai / openai clients: what later tests rely on."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from tests.fakes import (
    CapturedRequest,
    Disconnect,
    Error,
    FakeOpenAI,
    Hang,
    Json,
    Text,
    ToolCall,
    fake_embedding,
)
from tests.fakes.fixtures import fake_openai, make_chat_model, make_embeddings

__all__ = ["fake_openai"]  # the fixture, imported until the root conftest loads tests.fakes.fixtures


class Answer(BaseModel):
    answer: str
    confidence: float


EXPECTED = Answer(answer="Photosynthesis [1]", confidence=0.9)


def test_invoke_returns_scripted_text_with_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Text("Hello [1]"))
    reply = make_chat_model(fake_openai).invoke("hi")
    assert reply.content == "Hello [1]"
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] == 2


def test_stream_is_token_by_token_and_exact(fake_openai: FakeOpenAI) -> None:
    text = "  Plants turn light\ninto sugar [2].  "
    fake_openai.script(Text(text))
    chunks = [c.content for c in make_chat_model(fake_openai).stream("hi") if c.content]
    assert chunks == ["  Plants", " turn", " light", "\ninto", " sugar", " [2].", "  "]
    assert "".join(str(c) for c in chunks) == text


def test_stream_usage_chunk_when_requested(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Text("one two three"))
    chunks = list(make_chat_model(fake_openai, stream_usage=True).stream("hi"))
    assert fake_openai.requests[0].body["stream_options"] == {"include_usage": True}
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert usage and usage[-1]["output_tokens"] == 3


@pytest.mark.filterwarnings("ignore::UserWarning")  # openai's parsed-stream serializer warning
@pytest.mark.parametrize("method", [None, "json_schema", "function_calling", "json_mode"])
@pytest.mark.parametrize("streaming", [False, True])
def test_structured_output_every_method(fake_openai: FakeOpenAI, method: str | None, streaming: bool) -> None:
    fake_openai.script(Json(EXPECTED.model_dump()))
    model = make_chat_model(fake_openai)
    options: dict[str, Any] = {"method": method} if method else {}
    structured = model.with_structured_output(Answer, **options)
    result = list(structured.stream("q"))[-1] if streaming else structured.invoke("q")
    assert result == EXPECTED
    body = fake_openai.requests[0].body
    if method == "function_calling":
        assert body["tool_choice"]["function"]["name"] == "Answer"
    elif method == "json_mode":
        assert body["response_format"] == {"type": "json_object"}
    else:  # langchain-openai's default method is json_schema
        assert body["response_format"]["type"] == "json_schema"


def test_explicit_tool_call_with_bound_tools(fake_openai: FakeOpenAI) -> None:
    def lookup(term: str) -> str:
        """Look a term up in the glossary."""
        return term

    fake_openai.script(ToolCall("lookup", {"term": "osmosis"}, id="call_1"))
    reply = make_chat_model(fake_openai).bind_tools([lookup]).invoke("what is osmosis?")
    call = {"name": "lookup", "args": {"term": "osmosis"}, "id": "call_1", "type": "tool_call"}
    assert reply.tool_calls == [call]


async def test_ainvoke_and_astream(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Text("async answer"), Text("streamed async answer"))
    model = make_chat_model(fake_openai)
    assert (await model.ainvoke("a")).content == "async answer"
    chunks = [c.content async for c in model.astream("b") if c.content]
    assert chunks == ["streamed", " async", " answer"]
    assert [r.stream for r in fake_openai.requests] == [False, True]


async def test_async_structured_output_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Json(EXPECTED.model_dump()))
    structured = make_chat_model(fake_openai).with_structured_output(Answer, method="function_calling")
    results = [r async for r in structured.astream("q")]
    assert results[-1] == EXPECTED


def test_429_then_success_with_client_retries(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Error(429, "slow down", retry_after=0), Text("ok"))
    started = time.monotonic()
    reply = make_chat_model(fake_openai, max_retries=2).invoke("hi")
    assert reply.content == "ok"
    assert time.monotonic() - started < 0.3  # honoured retry-after-ms, not the SDK's 0.5 s backoff
    assert [r.status for r in fake_openai.requests] == [429, 200]
    assert [r.headers["x-stainless-retry-count"] for r in fake_openai.requests] == ["0", "1"]


def test_500_then_success(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Error(500, retry_after=0.01), Text("recovered"))
    assert make_chat_model(fake_openai, max_retries=2).invoke("hi").content == "recovered"
    assert len(fake_openai.requests) == 2


def test_error_without_retries_surfaces_as_rate_limit(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Error(429, "quota"))
    with pytest.raises(openai.RateLimitError, match="quota"):
        make_chat_model(fake_openai).invoke("hi")


def test_hang_makes_the_client_time_out(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Hang(5))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        make_chat_model(fake_openai, timeout=0.5).invoke("hi")
    assert time.monotonic() - started < 1.5
    record = fake_openai.requests[0]
    assert record.wait_done(1.0) and record.client_disconnected and not record.completed


def test_disconnect_mid_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Disconnect(after_tokens=2, content="one two three four"))
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in make_chat_model(fake_openai).stream("hi"):
            received.append(str(chunk.content))
    assert "".join(received) == "one two"
    record = fake_openai.requests[0]
    assert record.server_dropped and not record.completed


async def test_cancelled_astream_is_recorded_as_client_disconnect(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Text("one two three four five six", token_delay=0.5))
    model = make_chat_model(fake_openai)
    first_token = asyncio.Event()

    async def consume() -> None:
        async for chunk in model.astream("hi"):
            if chunk.content:
                first_token.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_token.wait(), 2)
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record = fake_openai.requests[0]
    assert await asyncio.to_thread(record.wait_done, 2.0)
    assert record.client_disconnected and not record.completed
    assert record.finished_at is not None and record.finished_at - cancelled_at < 0.2


def test_captured_request_has_messages_and_routing_helpers(fake_openai: FakeOpenAI) -> None:
    def by_system_prompt(request: CapturedRequest) -> Text | None:
        return Text("grader says yes") if "grader" in request.system_prompt else None

    fake_openai.responder = by_system_prompt
    fake_openai.script(Text("from the queue"))
    model = make_chat_model(fake_openai)
    tutor_turn = [SystemMessage("You are a tutor."), HumanMessage("Why?")]
    assert model.invoke(tutor_turn).content == "from the queue"
    assert (
        model.invoke([SystemMessage("You are a grader."), HumanMessage("Ok?")]).content == "grader says yes"
    )
    first = fake_openai.requests[0]
    assert first.messages == [
        {"role": "system", "content": "You are a tutor."},
        {"role": "user", "content": "Why?"},
    ]
    assert first.body["model"] == "gpt-4o-mini" and first.headers["authorization"] == "Bearer test"
    assert first.last_user_text == "Why?"


def test_unscripted_request_fails_loudly(fake_openai: FakeOpenAI) -> None:
    with pytest.raises(openai.InternalServerError, match="no reply scripted"):
        make_chat_model(fake_openai, max_retries=2).invoke("hi")
    assert len(fake_openai.requests) == 1  # x-should-retry: false beat the client's retries
    assert fake_openai.problems
    fake_openai.problems.clear()  # provoked on purpose; the fixture would fail the test otherwise


async def test_embeddings_are_deterministic(fake_openai: FakeOpenAI) -> None:
    embeddings = make_embeddings(fake_openai)
    first = embeddings.embed_documents(["cell", "membrane", "cell"])
    again = await embeddings.aembed_query("cell")
    assert len(first[0]) == 64 and first[0] == first[2] == again and first[0] != first[1]
    assert math.isclose(sum(x * x for x in first[0]), 1.0, rel_tol=1e-5)
    assert first[0] == pytest.approx(fake_embedding("cell"), abs=1e-6)  # the SDK fetches float32 base64
    sized = make_embeddings(fake_openai, dimensions=16).embed_query("cell")
    assert len(sized) == 16 and fake_openai.requests[-1].body["dimensions"] == 16


def test_embeddings_failure_can_be_scripted(fake_openai: FakeOpenAI) -> None:
    fake_openai.script_embeddings(Error(503, "embedding backend down"))
    with pytest.raises(openai.InternalServerError, match="backend down"):
        make_embeddings(fake_openai).embed_query("x")


def test_models_endpoint(fake_openai: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="test")
    assert "gpt-4o-mini" in [m.id for m in client.models.list()]


async def test_concurrent_streams(fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = lambda request: Text(f"answer to {request.last_user_text} " * 5, token_delay=0.02)
    model = make_chat_model(fake_openai)

    async def ask(i: int) -> str:
        return "".join([str(chunk.content) async for chunk in model.astream(f"q{i}")])

    started = time.monotonic()
    answers = await asyncio.gather(*(ask(i) for i in range(20)))
    assert answers == [f"answer to q{i} " * 5 for i in range(20)]
    assert time.monotonic() - started < 2.0  # one stream takes ~0.3 s; 20 in series would take 6 s
    assert all(r.completed and not r.client_disconnected for r in fake_openai.requests)


def test_stop_ends_hanging_requests_promptly() -> None:
    fake = FakeOpenAI().start()
    fake.script(Hang(30))
    client = openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0, timeout=10)
    stopper = threading.Timer(0.2, fake.stop)
    stopper.start()
    started = time.monotonic()
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    stopper.join()
    assert time.monotonic() - started < 1.0
    assert fake.requests[0].wait_done(1.0)
