"""The API on Gemini: `/chat` and `/chat/stream` through the real langchain-google-genai client and a
live server, against the fake Gemini Developer API. Errors read the same as on OpenAI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from core.embeddings.local import LocalMiniLMEmbeddings
from tests.api.faults import wait_healthy
from tests.api.sse import collect
from tests.api.test_processes import _free_port
from tests.conftest import BOOK, ROOT
from tests.fakes import Disconnect, Error, Hang, Stall
from tests.fakes.fixtures import make_gemini_chat_model
from tests.fakes.replies import Blocked, Reply
from tests.graphs.conftest import requests_like, tutor_responder

QUESTION = {"message": "What does a ROS 2 topic do?", "mode": "ask"}
ANSWER_PROMPT = "patient tutor for a textbook"


def answer_with(reply: Reply) -> Any:
    """The tutor's scripted replies, with `reply` for the answer call."""
    responder = tutor_responder()
    return lambda request: reply if ANSWER_PROMPT in request.system_prompt else responder(request)


async def test_stream_has_tokens_sources_and_a_cited_answer(make_api: Any, fake_gemini: Any) -> None:
    # Paced as a real model sends them: tokens arriving in one burst may go out as one event.
    fake_gemini.responder = tutor_responder(
        answer="Topics carry streams of messages [1] between nodes [2].", answer_token_delay=0.02
    )
    api = await make_api(make_gemini_chat_model(fake_gemini))
    response, events = await collect(api.client(), "/chat/stream", json=QUESTION)
    names = [event.name for event in events]
    assert response.status_code == 200 and names[0] == "metadata" and names[-1] == "done"
    tokens = [event.data["delta"] for event in events if event.name == "token"]
    assert len(tokens) >= 2 and "".join(tokens).startswith("Topics carry streams")
    done = events[-1].data
    assert done["answer"] == "Topics carry streams of messages [1] between nodes [2]."
    assert len(done["sources"]) == 2 and done["sources"][0]["url"].startswith("http://localhost:3000/docs/")
    assert names.index("sources") < names.index("done")
    answer_call = requests_like(fake_gemini, ANSWER_PROMPT)[0]
    assert answer_call.stream and answer_call.model == "gemini-2.5-flash"
    quiet = [r for r in fake_gemini.chat_requests if r is not answer_call]  # the title: asked whole
    assert quiet and not any(r.stream for r in quiet)
    assert answer_call.body["systemInstruction"]["parts"][0]["text"].count(ANSWER_PROMPT) == 1
    assert answer_call.headers["x-goog-api-key"] == "test"


async def test_chat_answers_and_the_classifier_parses(make_api: Any, fake_gemini: Any) -> None:
    fake_gemini.responder = tutor_responder(route="ask")
    api = await make_api(make_gemini_chat_model(fake_gemini))
    response = await api.client().post("/chat", json={"message": "What does a ROS 2 topic do?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["route"] == "ask" and body["response"].startswith("Topics carry") and body["sources"]
    classify = requests_like(fake_gemini, "You route a reader")[0]
    assert classify.body["generationConfig"]["responseMimeType"] == "application/json"


async def test_quota_and_server_errors_after_retries_are_503(make_api: Any, fake_gemini: Any) -> None:
    api = await make_api(make_gemini_chat_model(fake_gemini, max_retries=1))
    for status in (429, 500):
        fake_gemini.responder = answer_with(Error(status, "quota exhausted" if status == 429 else "boom"))
        before = len(requests_like(fake_gemini, ANSWER_PROMPT))
        response = await api.client().post("/chat", json=QUESTION)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "model_unavailable"
        assert len(requests_like(fake_gemini, ANSWER_PROMPT)) - before == 2  # one retry, then it gave up
    response, events = await collect(api.client(), "/chat/stream", json=QUESTION)
    assert events[-1].name == "error" and events[-1].data["code"] == "model_unavailable"


async def test_a_bad_request_is_not_a_500(make_api: Any, fake_gemini: Any) -> None:
    fake_gemini.responder = answer_with(Error(400, "Invalid JSON payload received."))
    api = await make_api(make_gemini_chat_model(fake_gemini))
    response = await api.client().post("/chat", json=QUESTION)
    assert response.status_code == 503 and response.json()["error"]["code"] == "model_unavailable"


async def test_a_safety_block_is_a_clear_error_not_an_empty_answer(make_api: Any, fake_gemini: Any) -> None:
    fake_gemini.responder = answer_with(Blocked())
    api = await make_api(make_gemini_chat_model(fake_gemini))
    response = await api.client().post("/chat", json=QUESTION)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "answer_blocked"
    assert "safety filter" in response.json()["error"]["message"]
    # Blocked after a few tokens: the stream ends with the same error, not a `done` with half an answer.
    fake_gemini.responder = answer_with(Blocked(after_tokens=3, content="Topics carry streams of things"))
    response, events = await collect(api.client(), "/chat/stream", json=QUESTION)
    names = [event.name for event in events]
    assert "done" not in names and names[-1] == "error"
    assert events[-1].data["code"] == "answer_blocked"


async def test_a_hang_is_bounded_by_llm_timeout(make_api: Any, fake_gemini: Any) -> None:
    fake_gemini.responder = answer_with(Hang(10))
    api = await make_api(make_gemini_chat_model(fake_gemini, timeout=0.5))
    started = time.monotonic()
    response = await api.client().post("/chat", json=QUESTION)
    assert response.status_code == 503 and response.json()["error"]["code"] == "model_unavailable"
    assert time.monotonic() - started < 3


async def test_a_dropped_stream_is_an_error_event(make_api: Any, fake_gemini: Any) -> None:
    fake_gemini.responder = answer_with(Disconnect(after_tokens=2, content="Topics carry streams"))
    api = await make_api(make_gemini_chat_model(fake_gemini))
    _, events = await collect(api.client(), "/chat/stream", json=QUESTION)
    tokens = "".join(event.data["delta"] for event in events if event.name == "token")
    assert tokens == "Topics carry"
    assert events[-1].name == "error" and events[-1].data["code"] == "model_unavailable"


async def test_keep_alive_comments_mid_stream_are_a_model_error_not_ours(
    make_api: Any, fake_gemini: Any
) -> None:
    """google-genai reads every line of a stream that is not `data:` as JSON, so an SSE keep-alive
    comment (a gateway's, or a stalled reply's) fails its parser: the turn ends as the model's
    failure (`model_unavailable`, the text so far kept, the thread free), not as our 500."""
    stall = Stall(after_tokens=2, seconds=20, every=0.05, content="Topics carry streams")
    fake_gemini.responder = answer_with(stall)
    api = await make_api(make_gemini_chat_model(fake_gemini), thread_busy_wait=0)
    thread = str(uuid.uuid4())
    client = api.client(headers={"X-Thread-Id": thread})
    started = time.monotonic()
    response, events = await collect(client, "/chat/stream", json=QUESTION)
    assert response.status_code == 200 and time.monotonic() - started < 5
    assert "".join(event.data["delta"] for event in events if event.name == "token") == "Topics carry"
    assert events[-1].name == "error" and events[-1].data["code"] == "model_unavailable"
    assert requests_like(fake_gemini, ANSWER_PROMPT)[-1].wait_done(5)  # the connection is closed
    fake_gemini.responder = tutor_responder()
    again = await client.post("/chat", json=QUESTION)
    assert again.status_code == 200, again.text
    assert len((await client.get(f"/threads/{thread}")).json()["messages"]) == 2
    fake_gemini.problems.clear()  # the fake notes the client hanging up on the stalled reply


async def test_rate_limit_then_success_is_retried(make_api: Any, fake_gemini: Any) -> None:
    replies = iter([Error(429, "slow down")])
    fake_gemini.responder = lambda request: next(replies, None) or tutor_responder()(request)
    api = await make_api(make_gemini_chat_model(fake_gemini, max_retries=1))
    response = await api.client().post("/chat", json=QUESTION)
    assert response.status_code == 200, response.text
    assert [r.status for r in fake_gemini.chat_requests][:2] == [429, 200]


def test_tutor_serve_on_the_standalone_fake_gemini(
    embedded_pg_url: str, tmp_path: Path, embeddings: LocalMiniLMEmbeddings
) -> None:
    """What a reader would do by hand: `python -m tests.fakes.serve gemini`, then `tutor serve` with
    CHAT_MODEL=google_genai:…, GOOGLE_API_KEY and GOOGLE_BASE_URL, then stream an answer."""
    book = tmp_path / "book" / "01-module-1-ros2"  # one page is enough, and quick to index
    book.mkdir(parents=True)
    shutil.copy(BOOK / "01-module-1-ros2" / "02-ros2-communication.md", book)
    fake_command = [sys.executable, "-m", "tests.fakes.serve", "gemini", "--token-delay", "0"]
    fake = subprocess.Popen(fake_command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    port = _free_port()
    try:
        assert fake.stdout is not None
        base_url = fake.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        env = {
            **os.environ,
            "TUTOR_HOME": str(tmp_path / ".tutor"),
            "DATABASE_URL": embedded_pg_url,
            "QDRANT_COLLECTION": f"book_{uuid.uuid4().hex[:10]}",  # the session's Postgres is shared
            "MODELS_DIR": str(embeddings.onnx_path.parent),
            "BOOK_PATH": str(book.parent),
            "CHAT_MODEL": "google_genai:gemini-2.5-flash",
            "GOOGLE_API_KEY": "test",
            "GOOGLE_BASE_URL": base_url,
        }
        tutor = str(Path(sys.executable).parent / "tutor")
        command = [tutor, "serve", "--port", str(port), "--log-level", "warning"]
        server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, server, server.stderr.read if server.stderr else str)
            with httpx.stream("POST", f"{url}/chat/stream", json=QUESTION, timeout=30) as response:
                lines = list(response.iter_lines())
            names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
            data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
            done = json.loads(data[-1])
            assert names[0] == "metadata" and "token" in names and "sources" in names and names[-1] == "done"
            assert done["answer"] == "Topics carry streams of messages [1]."
            assert done["sources"][0]["url"].startswith("http://localhost:3000/docs/")
        finally:
            server.terminate()
            server.wait(20)
    finally:
        fake.terminate()
        fake.wait(10)
