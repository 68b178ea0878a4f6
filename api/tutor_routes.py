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

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from langchain_core.runnables import Runnable, RunnableConfig
from langserve import add_routes
from langserve.server import EndpointName
from pydantic import BaseModel, ValidationError

from api.deps import authenticate, get_context, thread_header
from api.errors import ApiError
from api.middleware import THREAD_COOKIE
from api.openapi import tutor_openapi
from api.playground import add_playground_routes
from api.turns import Turn, open_turn
from graphs.state import TurnInput

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


def _from_playground(request: Request) -> bool:
    referer = request.headers.get("referer", "")
    return f"{PATH}/playground" in referer


class RunRequest(BaseModel):
    """The part of a run endpoint's body checked before any thread is touched: the turn itself.

    LangServe validates the whole request again (and `config` in full) when it runs.
    """

    input: TurnInput
    config: dict[str, Any] | None = None


async def check_run_body(request: Request) -> RunRequest:
    """Refuse a body the run would refuse, before a thread is created or the model is asked.

    Same answers as FastAPI's own routes: another content type than JSON, or a body that is not
    JSON → 422; undecodable (not UTF-8, nested too deep for the parser) → 400. Parsing here also
    keeps those inputs away from LangServe's `request.json()`, which turns them into 500s.
    Starlette caches the body, so LangServe reads the same bytes afterwards.
    """
    content_type = request.headers.get("content-type") or "application/json"  # FastAPI's default too
    media_type = content_type.partition(";")[0].strip().lower()
    if not (media_type == "application/json" or media_type.endswith("+json")):
        error = {"loc": ("body",), "msg": "Send the body as application/json.", "type": "content_type"}
        raise RequestValidationError([error])
    raw = await request.body()
    try:
        body = json.loads(raw)
    except json.JSONDecodeError:
        error = {"loc": ("body",), "msg": "The body is not a JSON document.", "type": "json_invalid"}
        raise RequestValidationError([error]) from None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise HTTPException(400, "There was an error parsing the body") from None
    try:
        return RunRequest.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


async def hold_turn(request: Request) -> AsyncIterator[None]:
    """Route dependency: for run endpoints, check, authenticate, claim the thread and hold its lease.

    The lease is held until the response is complete (FastAPI runs the code after `yield` once the
    response is sent). A thread this request created is taken back if the run is refused before it starts.
    """
    if request.method != "POST" or not request.url.path.endswith(RUN_ENDPOINTS):
        yield
        return
    context = get_context(request)
    user = await authenticate(request, context)
    run = await check_run_body(request)
    thread_id = thread_header(request)
    if thread_id is None and _from_playground(request):
        thread_id = request.cookies.get(THREAD_COOKIE)
        request.state.thread_cookie = True
    # The playground's stream_log shows a refused rewrite as the run's text (api.playground): its
    # page can only draw a stream. Every other run endpoint refuses with a status before it starts.
    mode = None if request.url.path.endswith("/stream_log") else run.input.mode
    turn = await open_turn(context, request, thread_id, user, mode=mode)
    request.state.thread_id = turn.thread_id
    request.state.turn = turn
    try:
        yield
    finally:
        # A refused rewrite, or LangServe refusing the request after all (e.g. a bad `config`): no
        # turn ran, so a thread it created is taken back (a no-op once the thread holds a message).
        try:
            await turn.discard_if_empty()
        finally:
            await turn.end()


async def server_config(config: dict[str, Any], request: Request) -> dict[str, Any]:
    """LangServe's per-request hook: the run's configurable comes from `hold_turn`, nothing else."""
    turn: Turn | None = getattr(request.state, "turn", None)
    if turn is None:
        raise ApiError(400, "bad_request", "This endpoint does not run the tutor.")
    run: RunnableConfig = turn.config
    return {**config, "configurable": dict(run.get("configurable") or {})}


def add_tutor_routes(app: FastAPI, graph: Runnable[Any, Any], *, playground: bool) -> None:
    """Mount the graph at `/tutor` with LangServe.

    The graph at `/tutor`; with `playground`, also the playground and the `stream_log` it uses
    (over a reader's view of the same graph: api.playground).
    """
    same_rules: dict[str, Any] = {
        "path": PATH,
        "per_req_config_modifier": server_config,
        "dependencies": [Depends(hold_turn)],
    }
    add_routes(app, graph, enabled_endpoints=ALWAYS, **same_rules)
    if playground:
        add_playground_routes(app, graph, **same_rules)
    # LangServe documents its routes itself; their docs are corrected from our error table.
    app.openapi = partial(tutor_openapi, app, PATH)  # type: ignore[method-assign]
    app.openapi_schema = None
