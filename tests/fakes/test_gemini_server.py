"""FakeGemini driven by the real langchain-google-genai / google-genai clients: what later tests rely on."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors as genai_errors
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from core.providers import AnswerBlocked, is_model_error
from tests.fakes import Disconnect, Error, Hang, Json, Text, ToolCall, fake_embedding
from tests.fakes.fixtures import make_gemini_chat_model, make_gemini_embeddings
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.replies import Blocked


class Answer(BaseModel):
    answer: str
    confidence: float


EXPECTED = Answer(answer="Photosynthesis [1]", confidence=0.9)


def test_invoke_returns_scripted_text_with_usage(fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Text("Hello [1]"))
    reply = make_gemini_chat_model(fake_gemini).invoke("hi")
    assert reply.content == "Hello [1]" and reply.response_metadata["finish_reason"] == "STOP"
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] == 2
    request = fake_gemini.requests[0]
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent" and not request.stream


def test_stream_is_token_by_token_and_exact(fake_gemini: FakeGemini) -> None:
    text = "  Plants turn light\ninto sugar [2].  "
    fake_gemini.script(Text(text))
    chunks = [c.content for c in make_gemini_chat_model(fake_gemini).stream("hi") if c.content]
    assert chunks == ["  Plants", " turn", " light", "\ninto", " sugar", " [2].", "  "]
    assert fake_gemini.requests[0].path.endswith(":streamGenerateContent") and fake_gemini.requests[0].stream


@pytest.mark.parametrize("method", [None, "json_schema", "function_calling"])
@pytest.mark.parametrize("streaming", [False, True])
def test_structured_output_every_method(fake_gemini: FakeGemini, method: str | None, streaming: bool) -> None:
    fake_gemini.script(Json(EXPECTED.model_dump()))
    options: dict[str, Any] = {"method": method} if method else {}
    structured = make_gemini_chat_model(fake_gemini).with_structured_output(Answer, **options)
    result = list(structured.stream("q"))[-1] if streaming else structured.invoke("q")
    assert result == EXPECTED
    body = fake_gemini.requests[0].body
    if method == "function_calling":
        assert body["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"] == ["Answer"]
    else:  # langchain-google-genai's default is json_schema
        assert body["generationConfig"]["responseMimeType"] == "application/json"
        assert body["generationConfig"]["responseJsonSchema"]["title"] == "Answer"


def test_explicit_tool_call_with_bound_tools(fake_gemini: FakeGemini) -> None:
    def lookup(term: str) -> str:
        """Look a term up in the glossary."""
        return term

    fake_gemini.script(ToolCall("lookup", {"term": "osmosis"}))
    reply = make_gemini_chat_model(fake_gemini).bind_tools([lookup]).invoke("what is osmosis?")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("lookup", {"term": "osmosis"})]


async def test_ainvoke_and_astream(fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Text("async answer"), Text("streamed async answer"))
    model = make_gemini_chat_model(fake_gemini)
    assert (await model.ainvoke("a")).content == "async answer"
    chunks = [c.content async for c in model.astream("b") if c.content]
    assert chunks == ["streamed", " async", " answer"]
    assert [r.stream for r in fake_gemini.requests] == [False, True]


def test_system_instruction_and_history_read_like_openai_messages(fake_gemini: FakeGemini) -> None:
    def by_system_prompt(request: Any) -> Text | None:
        return Text("grader says yes") if "grader" in request.system_prompt else None

    fake_gemini.responder = by_system_prompt
    fake_gemini.script(Text("from the queue"))
    model = make_gemini_chat_model(fake_gemini)
    tutor = [SystemMessage("You are a tutor."), HumanMessage("Why?"), AIMessage("Because.")]
    tutor.append(HumanMessage("Ok?"))
    grader = [SystemMessage("You are a grader."), HumanMessage("Ok?")]
    assert model.invoke(tutor).content == "from the queue"
    assert model.invoke(grader).content == "grader says yes"
    first = fake_gemini.requests[0]
    assert first.body["systemInstruction"]["parts"] == [{"text": "You are a tutor."}]
    assert first.messages == [
        {"role": "system", "content": "You are a tutor."},
        {"role": "user", "content": "Why?"},
        {"role": "assistant", "content": "Because."},
        {"role": "user", "content": "Ok?"},
    ]
    assert first.last_user_text == "Ok?" and first.headers["x-goog-api-key"] == "test"


def test_429_then_success_with_sdk_retries(fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Error(429, "slow down"), Text("ok"))
    assert make_gemini_chat_model(fake_gemini, max_retries=1).invoke("hi").content == "ok"
    assert [r.status for r in fake_gemini.requests] == [429, 200]


@pytest.mark.parametrize(
    ("status", "kind"), [(429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (400, "INVALID_ARGUMENT")]
)
def test_errors_surface_as_model_errors(fake_gemini: FakeGemini, status: int, kind: str) -> None:
    fake_gemini.script(Error(status, "scripted failure"))
    with pytest.raises(Exception, match=kind) as failure:
        make_gemini_chat_model(fake_gemini).invoke("hi")
    assert is_model_error(failure.value)
    assert len(fake_gemini.requests) == 1  # max_retries=0: one attempt


def test_safety_block_raises_answer_blocked(fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Blocked(), Blocked(after_tokens=2, content="one two three"))
    model = make_gemini_chat_model(fake_gemini)
    with pytest.raises(AnswerBlocked, match="SAFETY"):
        model.invoke("something dangerous")
    received: list[str] = []
    with pytest.raises(AnswerBlocked):
        for chunk in model.stream("something dangerous"):
            received.append(str(chunk.content))
    assert "".join(received) == "one two"


def test_hang_makes_the_client_time_out(fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Hang(5))
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException) as failure:
        make_gemini_chat_model(fake_gemini, timeout=0.5).invoke("hi")
    assert is_model_error(failure.value) and time.monotonic() - started < 1.5
    record = fake_gemini.requests[0]
    assert record.wait_done(1.0) and record.client_disconnected and not record.completed


def test_disconnect_mid_stream(fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Disconnect(after_tokens=2, content="one two three four"))
    received: list[str] = []
    with pytest.raises(httpx.TransportError) as failure:
        for chunk in make_gemini_chat_model(fake_gemini).stream("hi"):
            received.append(str(chunk.content))
    assert "".join(received) == "one two" and is_model_error(failure.value)
    assert fake_gemini.requests[0].server_dropped and not fake_gemini.requests[0].completed


async def test_cancelled_astream_is_recorded_as_client_disconnect(fake_gemini: FakeGemini) -> None:
    fake_gemini.script(Text("one two three four five six", token_delay=0.5))
    model = make_gemini_chat_model(fake_gemini)
    first_token = asyncio.Event()

    async def consume() -> None:
        async for chunk in model.astream("hi"):
            if chunk.content:
                first_token.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_token.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record = fake_gemini.requests[0]
    assert await asyncio.to_thread(record.wait_done, 2.0)
    assert record.client_disconnected and not record.completed


def test_unscripted_request_fails_loudly(fake_gemini: FakeGemini) -> None:
    with pytest.raises(genai_errors.ServerError, match="no reply scripted"):
        make_gemini_chat_model(fake_gemini).invoke("hi")
    assert fake_gemini.problems
    fake_gemini.problems.clear()  # provoked on purpose; the fixture would fail the test otherwise


async def test_embeddings_are_deterministic_and_batched(fake_gemini: FakeGemini) -> None:
    embeddings = make_gemini_embeddings(fake_gemini)
    first = embeddings.embed_documents(["cell", "membrane", "cell"])
    again = await embeddings.aembed_query("cell")
    assert len(first[0]) == 64 and first[0] == first[2] == again and first[0] != first[1]
    assert math.isclose(sum(x * x for x in first[0]), 1.0, rel_tol=1e-5)
    assert first[0] == pytest.approx(fake_embedding("cell"))  # the same vector FakeOpenAI gives
    batch = fake_gemini.embedding_requests[0]
    assert batch.path.endswith("/models/gemini-embedding-001:batchEmbedContents")
    assert [r["taskType"] for r in batch.body["requests"]] == ["RETRIEVAL_DOCUMENT"] * 3
    many = embeddings.embed_documents([f"text {n}" for n in range(150)])
    assert len(many) == 150 and len(fake_gemini.embedding_requests) == 4  # batches of 100


def test_embeddings_retry_then_fail_as_model_errors(fake_gemini: FakeGemini) -> None:
    fake_gemini.script_embeddings(Error(503, "embedding backend down"))
    assert len(make_gemini_embeddings(fake_gemini, max_retries=1).embed_query("x")) == 64  # retried
    fake_gemini.script_embeddings(Error(503, "embedding backend down"))
    with pytest.raises(Exception, match="backend down") as failure:
        make_gemini_embeddings(fake_gemini).embed_query("x")
    assert is_model_error(failure.value)


def test_models_endpoint(fake_gemini: FakeGemini) -> None:
    client = genai.Client(api_key="test", http_options={"base_url": fake_gemini.base_url})
    assert "models/gemini-2.5-flash" in [m.name for m in client.models.list()]
