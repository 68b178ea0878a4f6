"""A fake Gemini Developer API on 127.0.0.1 for driving the real `google-genai` / `langchain-google-genai`.

The same scripted server as `FakeOpenAI` (lifecycle, responder / queue / default, captured
requests, `problems`) speaking Gemini's wire format instead:

    POST /v1beta/models/{model}:generateContent
    POST /v1beta/models/{model}:streamGenerateContent?alt=sse
    POST /v1beta/models/{model}:embedContent, :batchEmbedContents
    GET  /v1beta/models

    fake = FakeGemini().start()
    fake.script(Text("Hello [1]"), Error(429), Blocked())
    model = ChatGoogleGenerativeAI(model="gemini-2.5-flash", base_url=fake.base_url, api_key="test")

Requests are recorded as `GeminiRequest`s whose `messages` read like OpenAI's (the system
instruction first, `model` turns as `assistant`), so a responder that routes on `system_prompt` or
`last_user_text` drives both fakes.
"""

from __future__ import annotations

from typing import Any

from tests.fakes._handler import Handler
from tests.fakes.gemini_wire import (
    Candidate,
    batch_embed_body,
    candidate_parts,
    embed_values,
    error_body,
    openai_like_messages,
    plan_candidate,
    response_body,
    stream_parts,
    usage_metadata,
)
from tests.fakes.openai_server import CapturedRequest, FakeOpenAI
from tests.fakes.replies import Disconnect, Error, Hang, Reply, Stall

API_VERSION = "v1beta"
MODELS = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-embedding-001"]


class GeminiRequest(CapturedRequest):
    """A captured Gemini request; `messages`, `system_prompt` and `last_user_text` read like OpenAI's."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        return openai_like_messages(self.body)

    @property
    def stream(self) -> bool:
        return self.path.endswith(":streamGenerateContent")

    @property
    def model(self) -> str:
        """The model named in the path (`…/models/gemini-2.5-flash:generateContent`)."""
        return self.path.rsplit("/", 1)[-1].split(":")[0]

    @property
    def method_name(self) -> str:
        return self.path.rsplit(":", 1)[-1]


class GeminiHandler(Handler):
    """Gemini's routes on the shared HTTP machinery (chunked bodies, client-gone polling, drops)."""

    def do_GET(self) -> None:
        if self._route() == "/models":
            models = [{"name": f"models/{m}", "displayName": m} for m in MODELS]
            self._send_json(200, {"models": models})
        else:
            self._send_error(Error(404, f"Unknown path {self.path}"))

    def _route(self) -> str:
        return self.path.split("?")[0].removeprefix(f"/{API_VERSION}")

    def _send_error(self, reply: Error, record: CapturedRequest | None = None) -> bool:
        headers = {"Retry-After": str(max(1, round(reply.retry_after)))} if reply.retry_after else {}
        return self._send_json(reply.status, error_body(reply), headers, record)

    def _dispatch(self, record: CapturedRequest) -> None:
        method = self._route().rsplit(":", 1)[-1] if ":" in self._route() else ""
        if method in ("generateContent", "streamGenerateContent"):
            self._serve_generate(record, self.fake._choose_chat_reply(record))
        elif method in ("embedContent", "batchEmbedContents"):
            self._serve_embed(record, method, self.fake._choose_embeddings_reply())
        else:
            self._send_error(Error(404, f"Unknown path {self.path}"), record)

    def _serve_generate(self, record: CapturedRequest, reply: Reply) -> None:
        record.reply = reply
        if isinstance(reply, Error | Hang):
            self._serve_failure(record, reply)
        elif isinstance(reply, Disconnect):
            if record.stream:
                self._stream_candidate(
                    record, Candidate(reply.content), reply.token_delay, reply.after_tokens
                )
            else:
                self._drop(record)
        elif isinstance(reply, Stall):
            if record.stream:
                self._stream_candidate(record, Candidate(reply.content), 0.0, stall=reply)
            else:
                self._serve_failure(record, Hang(reply.seconds))
        else:
            candidate = plan_candidate(reply, record.body)
            delays = (getattr(reply, "first_token_delay", 0.0), getattr(reply, "token_delay", 0.0))
            if record.stream:
                self._stream_candidate(record, candidate, delays[1], first_delay=delays[0])
            elif self._wait(record, delays[0]):
                record.completed = self._send_json(200, self._whole(record, candidate), record=record)

    def _whole(self, record: CapturedRequest, candidate: Candidate) -> dict[str, Any]:
        model = getattr(record, "model", "gemini")
        usage = usage_metadata(record.body, candidate.text)
        return response_body(
            model, record.completion_id, candidate_parts(candidate), candidate.finish_reason, usage
        )

    def _stream_candidate(
        self,
        record: CapturedRequest,
        candidate: Candidate,
        token_delay: float,
        cut_after: int | None = None,
        first_delay: float = 0.0,
        stall: Stall | None = None,
    ) -> None:
        """SSE: one response per token (the last one carries `finishReason` and usage); `cut_after`
        drops the connection after that many tokens, without the final response; `stall` sends
        keep-alive comments instead after `stall.after_tokens`."""
        model, rid = getattr(record, "model", "gemini"), record.completion_id
        record.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        if not self._end_headers(record):
            return
        chunks = stream_parts(candidate)
        for index, parts in enumerate(chunks):
            if not self._wait(record, first_delay if index == 0 else token_delay):
                return
            if index == cut_after:
                self._drop(record)
                return
            if stall is not None and index == stall.after_tokens:
                self._keep_alive(record, stall)
                return
            last = index == len(chunks) - 1 and cut_after is None
            finish = candidate.finish_reason if last else None
            usage = usage_metadata(record.body, candidate.text) if last else None
            if not self._event(record, response_body(model, rid, parts, finish, usage)):
                return
        if cut_after is not None:
            self._drop(record)
            return
        if not chunks:  # nothing to say (a blocked reply): one response with the finish reason alone
            final = response_body(model, rid, [], candidate.finish_reason, usage_metadata(record.body, ""))
            if not self._event(record, final):
                return
        record.completed = self._write(record, b"0\r\n\r\n")

    def _serve_embed(self, record: CapturedRequest, method: str, reply: Reply | None) -> None:
        record.reply = reply
        if isinstance(reply, Error | Hang):
            self._serve_failure(record, reply)
        elif isinstance(reply, Disconnect):
            self._drop(record)
        elif method == "batchEmbedContents":
            record.completed = self._send_json(200, batch_embed_body(record.body), record=record)
        else:
            dimensions = record.body.get("outputDimensionality")
            payload = {"embedding": embed_values(record.body.get("content") or {}, dimensions)}
            record.completed = self._send_json(200, payload, record=record)


class FakeGemini(FakeOpenAI):
    """Thread-safe scripted Gemini server; `base_url` is what `GOOGLE_BASE_URL` takes."""

    handler_class = GeminiHandler
    request_class = GeminiRequest

    @property
    def base_url(self) -> str:
        """The API root, without the version: the SDK appends `/v1beta/models/…`."""
        return f"http://{self._address[0]}:{self.port}/"

    @property
    def chat_requests(self) -> list[CapturedRequest]:
        return [r for r in self.requests if r.path.endswith((":generateContent", ":streamGenerateContent"))]

    @property
    def embedding_requests(self) -> list[CapturedRequest]:
        return [r for r in self.requests if r.path.endswith((":embedContent", ":batchEmbedContents"))]
