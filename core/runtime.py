"""Opening and closing everything a command needs: database, vector store, embedding model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from core.db import Database
from core.index import BookIndex, open_qdrant, qdrant_location
from core.providers import make_embeddings
from core.settings import Settings


@asynccontextmanager
async def open_book_index(settings: Settings) -> AsyncIterator[BookIndex]:
    """The configured book index, ready for ingest or search; closes its stores on exit."""
    # Opening stores and loading the model block: keep them off the event loop (servers share it).
    client = await asyncio.to_thread(open_qdrant, settings)  # first: a locked store fails fast
    try:
        db = await Database.open(settings)
        try:
            embeddings, model_name = await asyncio.to_thread(make_embeddings, settings)
            yield BookIndex(
                db=db,
                client=client,
                location=qdrant_location(settings),
                collection=settings.qdrant_collection,
                embeddings=embeddings,
                embedding_model=model_name,
                sentence_vectors=settings.sentence_vectors,
            )
        finally:
            await db.close()
    finally:
        client.close()
