"""A fake OpenAI-compatible server on 127.0.0.1 for driving the real `openai` / `langchain-openai`.

Why a real HTTP server rather than a mocked client: the code under test builds its own clients
(`init_chat_model`, `OpenAIEmbeddings`), and the behaviour worth testing — SDK retries, Retry-After,
timeouts, SSE parsing, cancellation closing the connection — lives in the client's HTTP stack. A
socket-level fake exercises all of it and works for sync, async and other processes alike.

    fake = FakeOpenAI().start()
    fake.script(Text("Hello [1]"), Error(429, retry_after=0), Text("ok"))
    model = init_chat_model("openai:gpt-4o-mini", base_url=fake.base_url, api_key="test")
    ...
    fake.requests[0].messages; fake.stop()

Replies for chat requests come from `responder(request)` if it returns one, else the FIFO queue, else
`default`. An unanswerable request gets a non-retryable 500 and is noted in `problems`, which the
`fake_openai` fixture turns into a test failure, so a missing script is never silently papered over.
Embeddings are answered with deterministic vectors unless `script_embeddings` queued a failure.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, Self

from tests.fakes._handler import Handler
from tests.fakes.replies import Error, Reply


@dataclass
class CapturedRequest:
    """One request as the fake saw it, and what became of it (updated while it is being served)."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]
    started_at: float  # time.monotonic()
    completion_id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    reply: Reply | None = None
    status: int | None = None
    finished_at: float | None = None
    completed: bool = False  # the whole reply was written
    client_disconnected: bool = False  # the client hung up before the reply was complete
    server_dropped: bool = False  # the fake closed the connection on purpose (Disconnect, Hang)
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def system_prompt(self) -> str:
        """The text of the system (or developer) messages, for responders that route on it."""
        roles = ("system", "developer")
        return "\n".join(_text(m.get("content")) for m in self.messages if m.get("role") in roles)

    @property
    def last_user_text(self) -> str:
        users = [m for m in self.messages if m.get("role") == "user"]
        return _text(users[-1].get("content")) if users else ""

    def wait_done(self, timeout: float = 5.0) -> bool:
        """Block until the fake has finished serving this request (or given up on the client)."""
        return self.done.wait(timeout)


def _text(content: Any) -> str:
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


class FakeOpenAI:
    """Thread-safe scripted OpenAI server. Use as a context manager or call start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._embedding_queue: deque[Reply] = deque()
        self._requests: list[CapturedRequest] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.default: Reply | None = None
        self.responder: Callable[[CapturedRequest], Reply | None] | None = None
        self.problems: list[str] = []

    # --- lifecycle -----------------------------------------------------------------------------

    handler_class: type[Handler] = Handler  # the wire format; FakeGemini brings its own
    request_class: type[CapturedRequest] = CapturedRequest

    def start(self) -> Self:
        handler = type("BoundHandler", (self.handler_class,), {"fake": self})
        server = ThreadingHTTPServer(self._address, handler, bind_and_activate=False)
        server.daemon_threads = True
        server.request_queue_size = 256  # listen backlog: 50+ simultaneous connects, no SYN retries
        server.allow_reuse_address = True
        socketserver.TCPServer.server_bind(server)  # skips HTTPServer's getfqdn() DNS lookup
        server.server_name, server.server_port = self._address[0], int(server.server_address[1])
        server.server_activate()
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="FakeOpenAI", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, abort delays and hangs, close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            _shutdown(connection)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running: call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What to pass as `base_url` to OpenAI clients: `http://127.0.0.1:PORT/v1`."""
        return f"http://{self._address[0]}:{self.port}/v1"

    # --- scripting -----------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies for chat completion requests, one per request, first in first out."""
        with self._lock:
            self._queue.extend(replies)

    def script_embeddings(self, *replies: Reply) -> None:
        """Queue Error/Hang/Disconnect for embeddings requests (anything else: normal vectors)."""
        with self._lock:
            self._embedding_queue.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted chat replies not yet used."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[CapturedRequest]:
        """A snapshot of every request so far, oldest first (the records themselves stay live)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[CapturedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def embedding_requests(self) -> list[CapturedRequest]:
        return [r for r in self.requests if r.path.endswith("/embeddings")]

    def reset(self) -> None:
        """Forget scripts, default, responder, requests and problems (open connections are kept)."""
        with self._lock:
            self._queue.clear()
            self._embedding_queue.clear()
            self._requests.clear()
        self.default = None
        self.responder = None
        self.problems.clear()

    def wait_for(self, predicate: Callable[[Self], bool], timeout: float = 5.0) -> bool:
        """Poll `predicate(self)` until true or timeout: for asserting on what happens server-side."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # --- used by the handler threads -----------------------------------------------------------

    def _capture(
        self, method: str, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> CapturedRequest:
        record = self.request_class(method, path, headers, body, started_at=time.monotonic())
        with self._lock:
            self._requests.append(record)
        return record

    def _choose_embeddings_reply(self) -> Reply | None:
        """A scripted failure for this embeddings request, or None for normal vectors."""
        with self._lock:
            return self._embedding_queue.popleft() if self._embedding_queue else None

    def _choose_chat_reply(self, record: CapturedRequest) -> Reply:
        """Responder, then queue, then default; a loud non-retryable 500 when none of them answers."""
        responder = self.responder
        if responder is not None:
            try:
                reply = responder(record)
            except Exception:
                self.problems.append(f"responder raised:\n{traceback.format_exc()}")
                return Error(500, "FakeOpenAI responder raised (see fake.problems)", should_retry=False)
            if reply is not None:
                return reply
        with self._lock:
            reply = self._queue.popleft() if self._queue else self.default
        if reply is None:
            self.problems.append(f"no reply scripted for {record.path}, messages: {record.messages!r:.500}")
            return Error(500, "FakeOpenAI: no reply scripted (queue empty, no default)", should_retry=False)
        return reply

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
        if self._stopping.is_set():
            _shutdown(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)


def _shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
