"""The FastAPI app: `create_app(settings)` (uvicorn: `api.app:create_app --factory`).

The lifespan opens everything once per process — pool and migrations, checkpointer, Qdrant, the
embedding model, the compiled graph — indexes the book when asked (incremental: near-free when
unchanged), and closes it all on shutdown. Tests pass a ready `AppContext` instead.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.admission import install_admission
from api.auth import Authenticator
from api.deps import AppContext
from api.errors import install_error_handlers
from api.middleware import BodyLimit, RequestContext
from api.routes import chat, health, profile, rewrite, threads
from api.tutor_routes import add_tutor_routes
from core.db import release_embedded_servers
from core.index import IndexNotReady
from core.settings import Settings, get_settings
from graphs.tutor import open_tutor

log = logging.getLogger(__name__)
WIDGET_DIR = Path(__file__).resolve().parents[1] / "widget"


async def open_context(settings: Settings, stack: AsyncExitStack) -> AppContext:
    """Open what the app shares for its lifetime (pool, index, models, graph) on `stack`."""
    stack.push_async_callback(asyncio.to_thread, release_embedded_servers)  # runs last, on shutdown
    tutor = await stack.enter_async_context(open_tutor(settings))
    index = tutor.services.retriever.index
    if settings.ingest_on_start:
        from ingest.book import ingest_book

        log.info("indexing the book", extra={"path": str(settings.book_path)})
        summary = await ingest_book(index, settings.book_path, settings)
        log.info("book indexed", extra=summary.as_json())
    try:
        await index.require()
    except IndexNotReady as exc:  # serve anyway: health shows 0 chunks, answers say "not covered"
        log.warning("%s", exc)
    return AppContext(settings=settings, tutor=tutor, auth=Authenticator.from_settings(settings))


def create_app(settings: Settings | None = None, *, context: AppContext | None = None) -> FastAPI:
    """The FastAPI app: every route, the middleware and the error handlers."""
    settings = settings or (context.settings if context else get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.context = context or await open_context(settings, stack)
            has_model = app.state.context.tutor.services.chat_model is not None
            install_admission(app, app.state.context.settings, model_turns=has_model)
            if not getattr(app.state, "tutor_routes", False):
                # LangServe needs the compiled graph, which needs the pool, which needs the running
                # loop: so these routes are added here, before the first request is served.
                add_tutor_routes(app, app.state.context.tutor.graph, playground=settings.playground_enabled)
                app.state.tutor_routes = True
            if context is None:  # a served process (tests bring their own context, many per process)
                freeze_loaded_objects()
            yield

    app = FastAPI(
        title="Textbook Tutor",
        version=_version(),
        lifespan=lifespan,
    )
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Thread-Id", "X-Request-Id"],
            expose_headers=["X-Thread-Id", "X-Request-Id", "Retry-After"],  # the widget shows quota waits
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext)
    for router in (chat.router, threads.router, profile.router, rewrite.router, health.router):
        app.include_router(router)
    # The reference chat widget and its demo page (widget/README.md); a book site can load it from here.
    app.mount("/widget", StaticFiles(directory=WIDGET_DIR, html=True, check_dir=False), name="widget")

    @app.get("/", include_in_schema=False)
    async def front_door() -> FileResponse:
        """The first URL anyone opens: the demo book page with the tutor widget on it."""
        return FileResponse(WIDGET_DIR / "index.html")

    return app


def freeze_loaded_objects() -> None:
    """Leave what start-up loaded (~330k objects: libraries, graph, models) out of the cyclic GC.

    Every full collection otherwise walks them all: ~0.23 s of CPU each, landing on whichever
    turns were running (bench/api_stream.py saw them as 40-100 ms spikes in the CPU per streamed
    turn); frozen, a full collection took 8 ms. Objects made later are collected as before.
    """
    gc.collect()
    gc.freeze()


def _version() -> str:
    from importlib.metadata import version

    return version("textbook-tutor")


def served_app() -> FastAPI:
    """Uvicorn's factory for `tutor serve` (each worker process calls it)."""
    from api.logs import LOG_LEVEL_VARIABLE, configure_logging

    settings = get_settings()
    configure_logging(settings.log_format, os.environ.get(LOG_LEVEL_VARIABLE, "INFO"))
    return create_app(settings)
