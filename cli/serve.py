"""`tutor serve`: the API (LangServe routes, widget stream, threads, profile) under uvicorn.

One worker runs in this process; `--workers N` runs N processes under `cli.workers.Supervisor`.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

from core.settings import get_settings

out = Console(stderr=True)
KEEP_ALIVE_SECONDS = 65


def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Worker processes (VECTOR_STORE=pgvector, or qdrant with QDRANT_URL: local Qdrant is "
            "one process).",
        ),
    ] = 1,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning, error.")] = "info",
) -> None:
    """Serve the tutor over HTTP; indexes the book on start (incremental, so fast when unchanged)."""
    import uvicorn

    from cli.workers import AddressInUse, Supervisor, TutorServer

    settings = get_settings()
    embedded_qdrant = settings.vector_store == "qdrant" and not settings.qdrant_url
    if workers > 1 and embedded_qdrant:
        out.print(
            "[bold red]error:[/] embedded Qdrant (VECTOR_STORE=qdrant, no QDRANT_URL) can only be opened "
            "by one process: run one worker, set VECTOR_STORE=pgvector (the book's vectors in Postgres, "
            "shared by every worker), or set QDRANT_URL to a Qdrant server.",
            highlight=False,
        )
        raise typer.Exit(2)
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    store = "embedded Qdrant" if embedded_qdrant else settings.vector_store
    mode = f"{store}: {workers} worker{'s' if workers > 1 else ''}"
    out.print(f"Textbook Tutor on {base} ({mode})", highlight=False)
    for label, path in start_urls(settings.playground_enabled):
        out.print(f"  {label:<11} {base}{path}", highlight=False)
    if settings.ingest_on_start:
        out.print("  (answers once the book is indexed: ~30 s on a first start)", highlight=False)
    from api.logs import LOG_LEVEL_VARIABLE, configure_logging

    os.environ[LOG_LEVEL_VARIABLE] = log_level  # each worker configures its logging from it
    config = uvicorn.Config(
        "api.app:served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,  # api.logs configures logging in each worker (LOG_FORMAT)
        log_level=log_level,
        # Off: uvicorn would trust X-Forwarded-For from 127.0.0.1 by default; the app honours only
        # TRUSTED_PROXY_HEADER (api.limits), so a client cannot pick its own address for the limits.
        proxy_headers=False,
        # uvicorn closes an idle keep-alive connection after 5 s: a client reusing it just then (a
        # reader asking again after a short Retry-After) got a dropped request (8 `ReadError`s in the
        # 200-reader soak). Longer than a load balancer's usual idle timeout (60 s), as they advise.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    if workers == 1:
        TutorServer(config).run()
        return
    configure_logging(settings.log_format, log_level)  # the supervisor's lines, as the workers'
    try:
        status = Supervisor(config, workers).run()
    except AddressInUse as exc:
        out.print(f"[bold red]error:[/] {exc.strerror}: is another server running?", highlight=False)
        raise typer.Exit(1) from exc
    if status:
        raise typer.Exit(status)


def start_urls(playground: bool) -> list[tuple[str, str]]:
    """What a person opens first, labelled."""
    urls = [("demo page", "/")]
    if playground:
        urls.append(("playground", "/tutor/playground/"))
    return [*urls, ("API docs", "/docs"), ("health", "/health")]
