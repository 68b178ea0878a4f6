"""The book index: a collection of chunks and sentences in a vector backend, bookkeeping in Postgres.

A collection of chunks (dense vectors + BM25 terms), optionally their sentence vectors (see
`core.vectors`), held by the backend `VECTOR_STORE` names (`core.vector_backends`: Qdrant, or
pgvector tables in the same Postgres). Postgres remembers what each collection was built with
(embedding model, dimension, BM25 average length) in `index_collections`, and which chunks it
holds in `index_records`, so a mismatch is caught before it can return nonsense and re-ingesting
an unchanged book writes nothing.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from core.db import Database
from core.fusion import CollectionStats, collection_stats
from core.sparse import BM25SparseEmbeddings
from core.vector_backends import VectorBackend
from core.vector_backends.qdrant import VectorStoreLocked, open_qdrant, qdrant_location
from core.vectors import DENSE, SPARSE, sentence_collection

__all__ = [
    "DENSE",
    "SPARSE",
    "BookIndex",
    "CollectionInfo",
    "VectorStoreLocked",
    "open_qdrant",
    "qdrant_location",
]


QUERY_VECTORS_KEPT = 256  # recent query vectors `BookIndex.embed_query` remembers


class IndexNotReady(RuntimeError):
    """The collection does not exist yet (nothing ingested)."""


class IndexMismatch(RuntimeError):
    """The collection was built with another embedding model or dimension."""


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection was built with (a row of `index_collections`)."""

    collection: str
    embedding_model: str
    dimension: int
    sparse_avgdl: float
    version: int
    chunks: int
    updated_at: datetime


class BookIndex:
    """A named collection in a vector backend plus its records in Postgres."""

    def __init__(
        self,
        *,
        db: Database,
        backend: VectorBackend,
        collection: str,
        embeddings: Embeddings,
        embedding_model: str,
        sentence_vectors: bool = True,
    ) -> None:
        self.db, self.backend, self.collection = db, backend, collection
        self.namespace = f"{backend.location}/{collection}"
        self.embeddings, self.embedding_model = embeddings, embedding_model
        self.info: CollectionInfo | None = None
        self.sparse = BM25SparseEmbeddings()
        # Asked for when the collection is (re)built; `has_sentences` says what the built one holds.
        self.sentence_vectors = sentence_vectors
        self.has_sentences = False
        self._stats: tuple[int, CollectionStats | None] | None = None
        self._queries: OrderedDict[str, list[float]] = OrderedDict()
        self._queries_lock = threading.Lock()

    @property
    def sentences(self) -> str:
        """The name of the sentence collection next to this one."""
        return sentence_collection(self.collection)

    def sibling(self, collection: str, *, sentence_vectors: bool = True) -> BookIndex:
        """Another collection in the same stores, with the same model (e.g. a benchmark corpus)."""
        return BookIndex(
            db=self.db,
            backend=self.backend,
            collection=collection,
            embeddings=self.embeddings,
            embedding_model=self.embedding_model,
            sentence_vectors=sentence_vectors,
        )

    async def record(self) -> dict[str, Any] | None:
        """The collection's bookkeeping row in Postgres as it is now (another process may have re-ingested).

        What it was built with, its chunk count and content version. No vector store call.
        """
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT collection, embedding_model, dimension, sparse_avgdl, version, chunks, updated_at"
                " FROM index_collections WHERE namespace = %s",
                (self.namespace,),
            )
            row = await cur.fetchone()
        return dict(row) if row else None

    async def load(self) -> CollectionInfo | None:
        """Read the collection's record; None when it was never built or its vectors are gone."""
        row = await self.record()
        size = await asyncio.to_thread(self.backend.dimension, self.collection)  # None: vectors gone
        self.info = CollectionInfo(**row) if row and size is not None else None
        if self.info:
            if size != self.info.dimension:
                raise IndexMismatch(
                    f"collection '{self.collection}' holds {size}-dimensional vectors, expected "
                    f"{self.info.dimension}: re-ingest with `tutor ingest PATH --recreate`"
                )
            self.has_sentences = await asyncio.to_thread(self.backend.has_sentences, self.collection)
            self.sparse = BM25SparseEmbeddings(avgdl=self.info.sparse_avgdl)
        return self.info

    async def require(self) -> CollectionInfo:
        """The loaded collection (read once), checked against the configured embedding model."""
        info = self.info or await self.load()
        if info is None:
            raise IndexNotReady(
                f"collection '{self.collection}' is not indexed yet: run `tutor ingest book/docs` first"
            )
        self.check_compatible(info)
        return info

    def collection_stats(self) -> CollectionStats | None:
        """What score fusion needs to know of the collection (`core.fusion`).

        Read once per content version of the loaded collection (a re-ingest that changed it bumps
        the version).
        """
        version = self.info.version if self.info else -1
        if self._stats is None or self._stats[0] != version:
            self._stats = (version, collection_stats(self.backend, self.collection, self.has_sentences))
        return self._stats[1]

    def check_compatible(self, info: CollectionInfo) -> None:
        """Raise `IndexMismatch` when the collection was built with another embedding model."""
        if info.embedding_model != self.embedding_model:
            raise IndexMismatch(
                f"collection '{self.collection}' was built with {info.embedding_model} "
                f"({info.dimension} dimensions) but EMBEDDINGS is {self.embedding_model}: "
                "re-ingest with `tutor ingest PATH --recreate`"
            )

    async def create(self, *, dimension: int, sparse_avgdl: float) -> CollectionInfo:
        """(Re)create the collection empty: drops old vectors and records of this namespace."""
        await self.backend.create(self.collection, dimension=dimension, sentences=self.sentence_vectors)
        async with self.db.pool.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM index_records WHERE namespace = %s", (self.namespace,))
            await conn.execute(
                "INSERT INTO index_collections"
                " (namespace, collection, embedding_model, dimension, sparse_avgdl)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (namespace) DO UPDATE SET"
                " embedding_model = excluded.embedding_model, dimension = excluded.dimension,"
                " sparse_avgdl = excluded.sparse_avgdl, version = index_collections.version + 1,"
                " chunks = 0, created_at = now(), updated_at = now()",
                (self.namespace, self.collection, self.embedding_model, dimension, sparse_avgdl),
            )
        info = await self.load()
        assert info is not None
        return info

    async def record_change(self, *, chunks: int, changed: bool) -> None:
        """Store the chunk count; bump the version when the content changed (caches key on it)."""
        async with self.db.pool.connection() as conn:
            await conn.execute(
                "UPDATE index_collections SET chunks = %s,"
                " version = version + %s, updated_at = CASE WHEN %s THEN now() ELSE updated_at END"
                " WHERE namespace = %s",
                (chunks, int(changed), changed, self.namespace),
            )
        await self.load()

    def vector_store(self) -> VectorStore:
        """The LangChain vector store the indexing API writes this collection through.

        It writes the chunk vectors and BM25 terms, and the sentence vectors when the collection has them.
        """
        return self.backend.vector_store(
            self.collection, embeddings=self.embeddings, sparse=self.sparse, sentences=self.has_sentences
        )

    def embed_query(self, text: str) -> list[float]:
        """The embedding of a query, remembered for the last `QUERY_VECTORS_KEPT` queries.

        A turn needs its question's vector twice: the search embeds it, then an extractive answer
        ranks the passages' sentences against it. Thread-safe (searches run in worker threads).
        """
        with self._queries_lock:
            if (vector := self._queries.get(text)) is not None:
                self._queries.move_to_end(text)
                return list(vector)  # a copy: callers may change theirs
        vector = self.embeddings.embed_query(text)
        with self._queries_lock:
            self._queries[text] = list(vector)
            while len(self._queries) > QUERY_VECTORS_KEPT:
                self._queries.popitem(last=False)
        return vector

    def stored_sentence_vectors(self, chunks: Mapping[str, int]) -> dict[str, dict[int, list[float]]]:
        """The stored sentence vectors of some chunks: chunk id → {ordinal: vector}.

        `chunks` maps a chunk's id to how many sentences it has (`len(chunk_sentences(...))`);
        ordinal n is the n-th of them. Only what is stored comes back (nothing for a collection
        built without sentence vectors), so a caller embeds whatever is missing.
        """
        if not self.has_sentences or not chunks:
            return {}
        return self.backend.sentence_vectors(self.collection, chunks)
