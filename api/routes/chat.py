"""`POST /chat` (JSON) and `POST /chat/stream` (the widget's server-sent events)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from api.deps import Ctx, OptionalUser, thread_header
from api.openapi import SSE_RESPONSE, error_responses
from api.turns import (
    ChatRequest,
    chat_response,
    finish_stream,
    invoke_turn,
    open_turn,
    raise_for_turn_error,
    start_run,
    turn_events,
)

router = APIRouter(tags=["chat"], responses=error_responses(400, 401, 404, 409, 422, 429, 503))
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/chat")
async def chat(body: ChatRequest, request: Request, context: Ctx, user: OptionalUser) -> dict[str, Any]:
    """One turn; the whole answer at once."""
    turn = await open_turn(context, request, body.thread_id or thread_header(request), user, mode=body.mode)
    request.state.thread_id = turn.thread_id
    output = await invoke_turn(context, turn, body.graph_input())
    raise_for_turn_error(output)
    return chat_response(output)


@router.post("/chat/stream", response_class=EventSourceResponse, responses={200: SSE_RESPONSE})
async def chat_stream(
    body: ChatRequest, request: Request, context: Ctx, user: OptionalUser
) -> EventSourceResponse:
    """One turn as server-sent events: metadata, token…, sources, done | error.

    Thread, ownership and the lease are settled before the stream starts, so a 404/409 is a plain
    status code; once streaming, failures arrive as an `error` event.
    """
    turn = await open_turn(context, request, body.thread_id or thread_header(request), user, mode=body.mode)
    request.state.thread_id = turn.thread_id
    run = start_run(context, turn, body.graph_input())
    events = turn_events(run, turn)
    return EventSourceResponse(
        events,
        headers=STREAM_HEADERS,
        ping=context.settings.sse_keepalive_seconds,
        ping_message_factory=lambda: ServerSentEvent(comment="keep-alive"),
        client_close_handler_callable=lambda _: run.aclose(),  # stop the model call first
        background=BackgroundTask(finish_stream, events, run, turn),
    )
