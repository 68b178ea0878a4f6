"""The HTTP side of `FakeOpenAI`: one handler thread per connection, speaking HTTP/1.1.

Streams are sent with chunked transfer encoding so that a deliberate drop (`Disconnect`) is an
*incomplete* body the client must report, not a clean end of stream. Every delay polls the socket,
so a client that hangs up (timeout, cancelled task) is noticed within one poll instead of at the
next write, and the request record says so.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from tests.fakes.embeddings import embeddings_body
from tests.fakes.replies import (
    Blocked,
    Completion,
    Disconnect,
    Error,
    Hang,
    Reply,
    Stall,
    chunk_body,
    completion_body,
    content_deltas,
    error_body,
    error_headers,
    plan_completion,
    tokenize,
    usage_chunk,
)

if TYPE_CHECKING:
    from tests.fakes.openai_server import CapturedRequest, FakeOpenAI

POLL_SECONDS = 0.02
MODELS = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeOpenAI  # set on a per-server subclass by FakeOpenAI.start()
    _responded = False  # whether this request's status line went out (a crash then can't send a 500)

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fake._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.fake._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log: 50 concurrent streams would drown test output."""

    # --- routing -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        if self._route() == "/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in MODELS]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_error(Error(404, f"Unknown path {self.path}"))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.fake.problems.append(f"invalid JSON body on {self.path}: {raw[:200]!r}")
            self._send_error(Error(400, "Fake server: request body is not JSON"))
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._responded = False
        record = self.fake._capture("POST", self.path.split("?")[0], headers, body)
        try:
            self._dispatch(record)
        except Exception:
            self.fake.problems.append(f"Fake server handler crashed:\n{traceback.format_exc()}")
            if self._responded:  # mid-reply: the only honest signal left is a broken body
                self._drop(record)
            else:
                self._send_error(
                    Error(500, "Fake server handler crashed (see fake.problems)", should_retry=False)
                )
        finally:
            record.finished_at = time.monotonic()
            record.done.set()

    def _dispatch(self, record: CapturedRequest) -> None:
        """Serve one POST (the provider's routes); the base class catches crashes and records the end."""
        route = self._route()
        if route == "/chat/completions":
            self._serve_chat(record, self.fake._choose_chat_reply(record))
        elif route == "/embeddings":
            self._serve_embeddings(record, self.fake._choose_embeddings_reply())
        else:
            self._send_error(Error(404, f"Unknown path {self.path}"), record)

    def _route(self) -> str:
        return self.path.split("?")[0].removeprefix("/v1")

    def _send_error(self, reply: Error, record: CapturedRequest | None = None) -> bool:
        """The provider's error response for `reply` (OpenAI's shape here)."""
        return self._send_json(reply.status, error_body(reply), error_headers(reply), record)

    # --- endpoints -----------------------------------------------------------------------------

    def _serve_chat(self, record: CapturedRequest, reply: Reply) -> None:
        record.reply = reply
        streaming = bool(record.body.get("stream"))
        if isinstance(reply, Error | Hang):
            self._serve_failure(record, reply)
        elif isinstance(reply, Blocked):
            shown = "".join(tokenize(reply.content)[: reply.after_tokens])
            withheld = Completion(shown, [], 0.0, 0.0, stopped_by="content_filter")
            if streaming:
                self._stream(record, withheld)
            else:
                payload = completion_body(record.completion_id, record.body, withheld)
                record.completed = self._send_json(200, payload, record=record)
        elif isinstance(reply, Disconnect):
            if streaming:
                cut = Completion(reply.content, [], 0.0, reply.token_delay)
                self._stream(record, cut, cut_after=reply.after_tokens)
            else:
                self._drop(record)
        elif isinstance(reply, Stall):
            if streaming:
                self._stream(record, Completion(reply.content, [], 0.0, 0.0), stall=reply)
            else:
                self._serve_failure(record, Hang(reply.seconds))
        else:
            completion = plan_completion(reply, record.body, f"call_{uuid.uuid4().hex[:24]}")
            if streaming:
                self._stream(record, completion)
            elif self._wait(record, completion.first_token_delay):
                payload = completion_body(record.completion_id, record.body, completion)
                record.completed = self._send_json(200, payload, record=record)

    def _serve_embeddings(self, record: CapturedRequest, reply: Reply | None) -> None:
        record.reply = reply
        if isinstance(reply, Error | Hang):
            self._serve_failure(record, reply)
        elif isinstance(reply, Disconnect):
            self._drop(record)
        else:
            record.completed = self._send_json(200, embeddings_body(record.body), record=record)

    def _serve_failure(self, record: CapturedRequest, reply: Error | Hang) -> None:
        if isinstance(reply, Error):
            record.completed = self._send_error(reply, record)
        elif self._wait(record, reply.seconds):
            self._drop(record)

    def _stream(
        self,
        record: CapturedRequest,
        completion: Completion,
        cut_after: int | None = None,
        stall: Stall | None = None,
    ) -> None:
        """SSE: role chunk, one chunk per token, finish chunk, optional usage chunk, `[DONE]`."""
        cid, body = record.completion_id, record.body
        record.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", cid)
        if not self._end_headers(record):
            return
        opening = {"role": "assistant", "content": "" if not completion.tool_calls else None}
        if not self._event(record, chunk_body(cid, body, opening)):
            return
        for index, delta in enumerate(content_deltas(completion)):
            delay = completion.first_token_delay if index == 0 else completion.token_delay
            if not self._wait(record, delay):
                return
            if index == cut_after:
                self._drop(record)
                return
            if stall is not None and index == stall.after_tokens:
                self._keep_alive(record, stall)
                return
            if not self._event(record, chunk_body(cid, body, delta)):
                return
        if cut_after is not None:
            self._drop(record)
            return
        if not self._event(record, chunk_body(cid, body, {}, completion.finish_reason)):
            return
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        if wants_usage and not self._event(record, usage_chunk(cid, body, completion)):
            return
        record.completed = self._write(record, _chunk(b"data: [DONE]\n\n") + _chunk(b""))

    def _keep_alive(self, record: CapturedRequest, stall: Stall) -> None:
        """SSE comments only, for `stall.seconds`, then drop the connection."""
        deadline = time.monotonic() + stall.seconds
        while time.monotonic() < deadline:
            if not (self._wait(record, stall.every) and self._write(record, _chunk(b": keepalive\n\n"))):
                return
        self._drop(record)

    # --- wire helpers --------------------------------------------------------------------------

    def _send_json(
        self,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        record: CapturedRequest | None = None,
    ) -> bool:
        data = json.dumps(payload).encode()
        if record is not None:
            record.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:16]}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        return self._end_headers(record) and self._write(record, data)

    def _end_headers(self, record: CapturedRequest | None) -> bool:
        try:
            self.end_headers()  # writes the status line and headers to the socket
            self._responded = True
            return True
        except OSError:
            return self._client_gone(record)

    def _event(self, record: CapturedRequest, payload: dict[str, Any]) -> bool:
        return self._write(record, _chunk(b"data: " + json.dumps(payload).encode() + b"\n\n"))

    def _write(self, record: CapturedRequest | None, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            return True
        except OSError:
            return self._client_gone(record)

    def _wait(self, record: CapturedRequest, seconds: float) -> bool:
        """Sleep, but return False as soon as the client hangs up or the server is stopping."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self.fake._stopping.is_set():
                self.close_connection = True
                return False
            readable, _, _ = select.select([self.connection], [], [], min(remaining, POLL_SECONDS))
            if readable:
                if self._peer_closed():
                    return self._client_gone(record)
                time.sleep(min(remaining, POLL_SECONDS))  # unexpected bytes: don't spin on them
        return True

    def _peer_closed(self) -> bool:
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _client_gone(self, record: CapturedRequest | None) -> bool:
        if record is not None and not record.completed:
            record.client_disconnected = True
        self.close_connection = True
        return False

    def _drop(self, record: CapturedRequest) -> None:
        """Close the connection mid-reply (FIN, so buffered chunks still arrive first)."""
        record.server_dropped = True
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk; an empty one terminates the body."""
    return b"%X\r\n%s\r\n" % (len(data), data)
