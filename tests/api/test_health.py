"""GET /health answers 503 while Postgres or the vector store is down, and 200 again once it is back."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from core.embeddings.local import LocalMiniLMEmbeddings
from core.index import BookIndex
from core.settings import Settings
from tests.api.conftest import SECRET, Api, make_context, serve
from tests.conftest import close_index, open_index


@pytest.fixture(params=["qdrant", "pgvector"])
async def own_stores(
    request: pytest.FixtureRequest, embedded_pg_url: str, embeddings: LocalMiniLMEmbeddings, tmp_path: Path
) -> AsyncIterator[tuple[BookIndex, str, Settings]]:
    """A database and a vector store (Qdrant folder or pgvector tables) of this test's own."""
    name = f"health_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(embedded_pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    settings = Settings(_env_file=None, tutor_home=tmp_path / ".tutor", jwt_secret=SECRET)  # type: ignore[call-arg]
    url = make_conninfo(embedded_pg_url, dbname=name)
    index = await open_index(settings, embeddings, url, request.param)
    yield index, name, settings
    await close_index(index)
    with psycopg.connect(embedded_pg_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def _health(api: Api) -> tuple[int, dict[str, Any]]:
    response = await api.client().get("/health")
    return response.status_code, response.json()


async def test_health_follows_postgres(own_stores: Any, embedded_pg_url: str) -> None:
    index, name, settings = own_stores
    server, task, url = await serve_app(index, settings)
    api = Api(url, None, server)  # type: ignore[arg-type]
    try:
        assert (await _health(api))[0] == 200
        with psycopg.connect(embedded_pg_url, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        status, body = await _health(api)
        assert status == 503 and body["database"] == "unavailable"
        # pgvector's vectors are in that database: down with it; Qdrant's are not.
        assert body["vector_store"] == ("ok" if index.backend.kind == "qdrant" else "unavailable")
        assert body["status"] == "unavailable"
        with psycopg.connect(embedded_pg_url, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        for _ in range(50):  # the pool reconnects by itself (with its own backoff)
            if (await _health(api))[0] == 200:
                break
            await asyncio.sleep(0.2)
        assert (await _health(api))[0] == 200
    finally:
        server.should_exit = True
        await task


async def test_health_follows_the_vector_store(own_stores: Any) -> None:
    index, _, settings = own_stores
    server, task, url = await serve_app(index, settings)
    api = Api(url, None, server)  # type: ignore[arg-type]
    try:
        status, body = await _health(api)
        assert status == 200 and body["index"]["chunks"] == 0  # nothing ingested: up, but empty
        assert body["vector_backend"] == index.backend.kind and body["worker_pid"] == os.getpid()
        index.backend.close()  # the vector store goes away (Qdrant client, or pgvector's read pool)
        status, body = await _health(api)
        assert status == 503 and body["vector_store"] == "unavailable" and body["database"] == "ok"
    finally:
        server.should_exit = True
        await task


async def serve_app(index: BookIndex, settings: Settings) -> Any:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from api.app import create_app

    saver = AsyncPostgresSaver(index.db.pool)  # type: ignore[arg-type]
    await saver.setup()
    return await serve(create_app(settings, context=make_context(index, settings, None, saver)))
