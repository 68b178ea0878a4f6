"""The graph over LangServe at `/tutor`: invoke, stream, stream_events, schemas and the playground.

Who and which thread are settled in a route dependency before LangServe runs anything: the user
from the bearer token, the thread from `X-Thread-Id` (created when absent and returned in the
response header), ownership (someone else's thread: 404), and the one-turn-per-thread lease, held
until the response — streamed or not — is finished. The `per_req_config_modifier` then *replaces*
the run's `configurable` with those values, so whatever a client puts there is ignored.

The playground sends neither header nor token: it posts to `stream_log` from its own page. For it
alone the thread rides in an HttpOnly cookie scoped to `/tutor`, so a conversation typed into the
playground continues across questions (a new browser session starts a new thread).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from langchain_core.runnables import Runnable, RunnableConfig
from langserve import add_routes
from langserve.server import EndpointName

from api.deps import authenticate, get_context, thread_header
from api.errors import ApiError
from api.middleware import THREAD_COOKIE
from api.turns import Turn, open_turn
from graphs.rewrite_policy import RewriteRefused

PATH = "/tutor"
RUN_ENDPOINTS = ("/invoke", "/stream", "/stream_log", "/stream_events")
ALWAYS: list[EndpointName] = [
    "invoke",
    "stream",
    "stream_events",
    "input_schema",
    "output_schema",
    "config_schema",
    "config_hashes",
]
PLAYGROUND: list[EndpointName] = ["playground", "stream_log"]  # the playground streams through stream_log


def _from_playground(request: Request) -> bool:
    referer = request.headers.get("referer", "")
    return f"{PATH}/playground" in referer


async def hold_turn(request: Request) -> AsyncIterator[None]:
    """Route dependency: for run endpoints, authenticate, claim the thread and hold its lease until
    the response is complete (FastAPI runs the code after `yield` once the response is sent)."""
    if request.method != "POST" or not request.url.path.endswith(RUN_ENDPOINTS):
        yield
        return
    context = get_context(request)
    user = await authenticate(request, context)
    thread_id = thread_header(request)
    if thread_id is None and _from_playground(request):
        thread_id = request.cookies.get(THREAD_COOKIE)
        request.state.thread_cookie = True
    turn = await open_turn(context, request, thread_id, user, mode=await _requested_mode(request))
    request.state.thread_id = turn.thread_id
    request.state.turn = turn
    try:
        yield
    except RewriteRefused:  # from /invoke: api.errors answers it; the refused turn leaves no thread
        await turn.discard_if_empty()
        raise
    finally:
        await turn.lease.release()
        await turn.slot.release()


async def _requested_mode(request: Request) -> str | None:
    """The `mode` of the run's input, so a refused rewrite is answered before anything is created
    (and before a stream starts). A body LangServe will reject anyway just gives None here."""
    try:
        body = await request.json()  # Starlette keeps the body: LangServe reads it again
    except ValueError:
        return None
    run_input = body.get("input") if isinstance(body, dict) else None
    mode = run_input.get("mode") if isinstance(run_input, dict) else None
    return mode if isinstance(mode, str) else None


async def server_config(config: dict[str, Any], request: Request) -> dict[str, Any]:
    """LangServe's per-request hook: the run's configurable comes from `hold_turn`, nothing else."""
    turn: Turn | None = getattr(request.state, "turn", None)
    if turn is None:
        raise ApiError(400, "bad_request", "This endpoint does not run the tutor.")
    run: RunnableConfig = turn.config
    return {**config, "configurable": dict(run.get("configurable") or {})}


def add_tutor_routes(app: FastAPI, graph: Runnable[Any, Any], *, playground: bool) -> None:
    add_routes(
        app,
        graph,
        path=PATH,
        enabled_endpoints=ALWAYS + (PLAYGROUND if playground else []),
        per_req_config_modifier=server_config,
        dependencies=[Depends(hold_turn)],
    )
