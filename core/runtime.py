"""Opening and closing everything a command needs: database, vector store, embedding model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from core.db import Database
from core.index import BookIndex
from core.providers import make_embeddings
from core.settings import Settings
from core.vector_backends import VectorBackend
from core.vector_backends.pgvector import PgVectorBackend
from core.vector_backends.qdrant import QdrantBackend


@asynccontextmanager
async def open_stores(settings: Settings) -> AsyncIterator[tuple[Database, VectorBackend]]:
    """The database and the configured vector backend (`VECTOR_STORE`), closed on exit."""
    # Opening stores blocks: keep it off the event loop (servers share it).
    qdrant = None
    if settings.vector_store == "qdrant":
        qdrant = await asyncio.to_thread(QdrantBackend.open, settings)  # first: a locked store fails fast
    try:
        db = await Database.open(settings)
        try:
            backend: VectorBackend = qdrant or await PgVectorBackend.open(db)
            try:
                yield db, backend
            finally:
                if qdrant is None:
                    backend.close()
        finally:
            await db.close()
    finally:
        if qdrant is not None:
            qdrant.close()


@asynccontextmanager
async def open_book_index(settings: Settings) -> AsyncIterator[BookIndex]:
    """The configured book index, ready for ingest or search; closes its stores on exit."""
    async with open_stores(settings) as (db, backend):
        embeddings, model_name = await asyncio.to_thread(make_embeddings, settings)
        yield BookIndex(
            db=db,
            backend=backend,
            collection=settings.qdrant_collection,
            embeddings=embeddings,
            embedding_model=model_name,
            sentence_vectors=settings.sentence_vectors,
        )
