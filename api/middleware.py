"""Request ids, one access-log line per request, and the `X-Thread-Id` response header.

Plain ASGI (not `BaseHTTPMiddleware`), so streamed responses pass through untouched and a client
disconnect still reaches the endpoint.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response

log = logging.getLogger("api.access")
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
THREAD_COOKIE = "tutor_thread"  # the playground's conversation (see api.langserve)


class RequestContext:
    """ASGI middleware giving each request an id and writing the access log line.

    A sane client `X-Request-Id` is kept, and echoed; it also returns the
    thread a turn ran on as `X-Thread-Id` (routes put it in `request.state.thread_id`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its id, echo the id and log the access line."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        offered = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if _CLIENT_ID.match(offered) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        state: dict[str, Any] = scope.setdefault("state", {})
        started, status = time.perf_counter(), 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(b"x-request-id", request_id.encode())]
                if thread_id := state.get("thread_id"):
                    extra.append((b"x-thread-id", thread_id.encode()))
                    if state.get("thread_cookie"):
                        cookie = f"{THREAD_COOKIE}={thread_id}; Path=/tutor; HttpOnly; SameSite=Strict"
                        extra.append((b"set-cookie", cookie.encode()))
                elif state.get("forget_thread_cookie"):  # the playground page loaded afresh
                    cookie = f"{THREAD_COOKIE}=; Path=/tutor; Max-Age=0; HttpOnly; SameSite=Strict"
                    extra.append((b"set-cookie", cookie.encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            # Path only: query strings and bodies may carry what must not be logged.
            log.info(
                "%s %s %s %.0fms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                extra={"status": status, "path": scope["path"]},
            )
            request_id_var.reset(token)


class BodyTooLarge(HTTPException):
    """The request body is over `MAX_BODY_BYTES` (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class BodyLimit:
    """413 in our error shape for bodies above `max_bytes`.

    Announced (Content-Length) ones at once, chunked ones as soon as the count passes the limit.

    (FastAPI's own `max_body_size` answers the first case in plain text, from outside our exception handlers.)
    Raised as an HTTPException from `receive`, the error reaches the app's handlers wherever the body is read,
    LangServe included.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request, refusing its body once it grows past the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            too_large = BodyTooLarge(self.max_bytes)
            await error_response(413, "payload_too_large", too_large.detail)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)
