"""`GET /health`: is every dependency answering? 503 when Postgres or the vector store is not."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import Ctx
from api.openapi import error_responses

# 503 carries the health body itself (status "unavailable"), not the error shape.
router = APIRouter(
    tags=["health"],
    responses={**error_responses(), 503: {"description": "Postgres or the vector store is not answering."}},
)
log = logging.getLogger(__name__)
CHECK_TIMEOUT = 3.0  # seconds per dependency: a health check must answer even when one hangs


async def _database(context: Ctx) -> dict[str, Any]:
    record = await context.tutor.services.retriever.index.record()
    return record or {"chunks": 0, "version": 0, "updated_at": None}


async def _vector_store(context: Ctx) -> int:
    index = context.tutor.services.retriever.index
    # A store that answers but has no collection yet is up, with 0 points.
    return await asyncio.to_thread(index.backend.count, index.collection)


async def _check(name: str, probe: Any) -> tuple[bool, Any]:
    try:
        return True, await asyncio.wait_for(probe, CHECK_TIMEOUT)
    except Exception as exc:  # any failure means "down"; the reason goes to the log, not the client
        log.warning("health: %s is down (%s)", name, type(exc).__name__)
        return False, None


@router.get("/health")
async def health(request: Request, context: Ctx) -> JSONResponse:
    """Whether Postgres, the vector store and the models answer, and what the index holds (503 when down).

    `vector_backend` names the store (qdrant or pgvector); `worker_pid` the process that answered
    (with `tutor serve --workers N`, successive requests may reach different workers).
    """
    (db_ok, record), (vectors_ok, points) = await asyncio.gather(
        _check("database", _database(context)), _check("vector_store", _vector_store(context))
    )
    settings = context.settings
    body = {
        "status": "ok" if db_ok and vectors_ok else "unavailable",
        "version": request.app.version,
        "database": "ok" if db_ok else "unavailable",
        "vector_store": "ok" if vectors_ok else "unavailable",
        "vector_backend": context.tutor.services.retriever.index.backend.kind,
        "worker_pid": os.getpid(),
        "chat_model": settings.chat_model or "extractive",
        "embeddings": context.tutor.services.retriever.index.embedding_model,
        "index": {
            "chunks": record["chunks"] if record else points,
            "updated_at": record["updated_at"].isoformat() if record and record["updated_at"] else None,
            "version": record["version"] if record else None,
        },
    }
    return JSONResponse(body, status_code=200 if db_ok and vectors_ok else 503)
