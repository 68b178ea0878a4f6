"""LangServe's playground at `/tutor/playground/`, showing a turn the way a reader reads it.

The playground prints whatever its `stream_log` run streams. The graph streams one state update
per node — full retrieved passages included — so the playground's endpoints serve a thin view of
the same graph instead: the answer's tokens as they come (a model's, or an extractive answer's sentences), the
authoritative answer, then its numbered sources with their deep links, all as text. `stream_log`
exists for the playground only (`PLAYGROUND_ENABLED`); invoke, stream and stream_events keep the
graph itself. Auth, thread (the playground's cookie), ownership and the one-turn lease are the same
route dependency and config hook as the rest of `/tutor` (api.tutor_routes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from fastapi import APIRouter, Depends, FastAPI, Request
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langserve import add_routes

from api.streaming import STREAM_MODES, TokenSelector
from api.turns import DURABILITY, OUTPUT_KEYS
from graphs.rewrite_policy import RewriteRefused
from graphs.state import TurnInput


def reader_view(graph: Runnable[Any, Any]) -> Runnable[Any, str]:
    """The graph's turn as text chunks: tokens, then what the tokens lacked, then the sources."""

    async def turn_as_text(inputs: dict[str, Any], config: RunnableConfig) -> AsyncIterator[str]:
        tokens, streamed, output = TokenSelector(), "", {}
        stream = graph.astream(inputs, config, stream_mode=STREAM_MODES, durability=DURABILITY)
        try:
            async for mode, chunk in stream:
                if mode in ("messages", "custom"):
                    text = tokens.text(mode, chunk)
                else:
                    text = tokens.drain()
                    for update in chunk.values():
                        output.update({k: v for k, v in (update or {}).items() if k in OUTPUT_KEYS})
                if text:
                    streamed += text
                    yield text
        except RewriteRefused as refused:  # e.g. a rewrite asked anonymously: the page says why
            output = {"error": {"code": refused.code, "message": refused.message}}
        yield closing_text(streamed, output)

    # RunnableLambda streams an async generator's chunks; its type hints only name coroutines.
    return RunnableLambda(cast(Any, turn_as_text), name="tutor")


def closing_text(streamed: str, output: dict[str, Any]) -> str:
    """The text the playground shows after the streamed tokens.

    That is: the rest of the answer (all of it when nothing streamed,
    as with extractive answers), the checked answer again if it differs from what streamed (the
    model's unknown citation markers are dropped from it), then the sources or the error.
    """
    if error := output.get("error"):
        return f"{error['message']} ({error['code']})"
    answer: str = output.get("answer") or ""
    if answer.startswith(streamed):
        text = answer[len(streamed) :]
    else:
        text = f"\n\nAnswer, citations checked:\n{answer}"
    if sources := output.get("sources"):
        lines = [f"[{n}] {s['title']} › {s['heading']}\n    {s['url']}" for n, s in enumerate(sources, 1)]
        text += "\n\nSources\n" + "\n".join(lines)
    return text


async def fresh_page(request: Request) -> None:
    """Route dependency: a fresh playground page starts a new thread.

    Route dependency: loading the playground's page starts a new conversation (its thread cookie
    is cleared), since the page shows none of the earlier one.
    """
    if request.method == "GET" and request.url.path.endswith("/playground/"):
        request.state.forget_thread_cookie = True


def add_playground_routes(
    app: FastAPI, graph: Runnable[Any, Any], *, dependencies: list[Any], **route_options: Any
) -> None:
    """The playground page and its `stream_log` under `/tutor`, over `reader_view(graph)`.

    A router of their own: LangServe allows one runnable per path and per app or router.
    """
    router = APIRouter()
    add_routes(
        router,
        reader_view(graph),
        input_type=TurnInput,
        output_type=str,
        enabled_endpoints=["playground", "stream_log"],
        dependencies=[*dependencies, Depends(fresh_page)],
        **route_options,
    )
    app.include_router(router)
