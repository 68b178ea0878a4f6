"""The book index: Qdrant collections of chunks and sentences, and the bookkeeping in Postgres.

A collection of chunks (dense + sparse vectors), optionally a collection of their sentences (see
`core.vectors`).

Qdrant is embedded (local mode, a folder under `TUTOR_HOME`) unless `QDRANT_URL` names a server or
cluster. Postgres remembers what each collection was built with (embedding model, dimension, BM25
average length) in `index_collections`, and which chunks it holds in `index_records`, so a mismatch
is caught before it can return nonsense and re-ingesting an unchanged book writes nothing.
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
from langchain_qdrant import RetrievalMode
from qdrant_client import QdrantClient, models

from core.db import Database
from core.fusion import CollectionStats, collection_stats
from core.settings import Settings
from core.sparse import BM25SparseEmbeddings
from core.vectors import (
    DENSE,
    SPARSE,
    SentenceVectorStore,
    create_sentence_collection,
    sentence_collection,
    sentence_point_id,
)

__all__ = ["DENSE", "SPARSE", "BookIndex", "CollectionInfo"]

QUERY_VECTORS_KEPT = 256  # recent query vectors `BookIndex.embed_query` remembers


class VectorStoreLocked(RuntimeError):
    """Another process holds the embedded Qdrant folder."""


class IndexNotReady(RuntimeError):
    """The collection does not exist yet (nothing ingested)."""


class IndexMismatch(RuntimeError):
    """The collection was built with another embedding model or dimension."""


def open_qdrant(settings: Settings) -> QdrantClient:
    """A client for the configured Qdrant: a server/cluster, or local mode under TUTOR_HOME."""
    if settings.qdrant_url:
        return QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=30)
    settings.qdrant_path.mkdir(parents=True, exist_ok=True)
    try:
        return QdrantClient(path=str(settings.qdrant_path))
    except RuntimeError as exc:
        if "already accessed" not in str(exc):
            raise
        raise VectorStoreLocked(
            f"the embedded Qdrant store {settings.qdrant_path} is in use by another process "
            "(local mode allows one process at a time; a running `tutor serve`?). Stop that process, "
            "point TUTOR_HOME at another folder, or run a Qdrant server and set QDRANT_URL."
        ) from exc


def qdrant_location(settings: Settings) -> str:
    """Where the vectors live, as part of the bookkeeping key: two stores never share records."""
    return settings.qdrant_url or f"local:{settings.qdrant_path.resolve()}"


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
    """A named collection in Qdrant plus its records in Postgres."""

    def __init__(
        self,
        *,
        db: Database,
        client: QdrantClient,
        location: str,
        collection: str,
        embeddings: Embeddings,
        embedding_model: str,
        sentence_vectors: bool = True,
    ) -> None:
        self.db, self.client, self.collection = db, client, collection
        self.namespace = f"{location}/{collection}"
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
        location = self.namespace.removesuffix(f"/{self.collection}")
        return BookIndex(
            db=self.db,
            client=self.client,
            location=location,
            collection=collection,
            embeddings=self.embeddings,
            embedding_model=self.embedding_model,
            sentence_vectors=sentence_vectors,
        )

    async def record(self) -> dict[str, Any] | None:
        """The collection's bookkeeping row in Postgres as it is now (another process may have re-ingested).

        What it was built with, its chunk count and content version. No Qdrant call.
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
        size = await asyncio.to_thread(self._qdrant_dimension)  # None: the vectors are gone
        self.info = CollectionInfo(**row) if row and size is not None else None
        if self.info:
            if size != self.info.dimension:
                raise IndexMismatch(
                    f"collection '{self.collection}' holds {size}-dimensional vectors, expected "
                    f"{self.info.dimension}: re-ingest with `tutor ingest PATH --recreate`"
                )
            self.has_sentences = await asyncio.to_thread(self.client.collection_exists, self.sentences)
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
            sentences = self.sentences if self.has_sentences else None
            self._stats = (version, collection_stats(self.client, self.collection, sentences))
        return self._stats[1]

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
        """The stored sentence vectors of some chunks: chunk point id → {ordinal: vector}.

        `chunks` maps a chunk's point id to how many sentences it has (`len(chunk_sentences(...))`);
        ordinal n is the n-th of them. Only what is stored comes back: nothing for a collection
        built without sentence vectors, and a sentence whose point is missing is left out, so a
        caller embeds what is not here. One lookup by point id (no filter scan).

        Port note: a backend without Qdrant returns the same shape from its own sentence rows.
        """
        if not self.has_sentences or not chunks:
            return {}
        owners = {
            sentence_point_id(chunk, n): (chunk, n) for chunk, count in chunks.items() for n in range(count)
        }
        points = self.client.retrieve(self.sentences, list(owners), with_payload=False, with_vectors=True)
        found: dict[str, dict[int, list[float]]] = {}
        for point in points:
            vector: Any = point.vector  # the sentence collection has one unnamed dense vector
            if isinstance(vector, list) and (owner := owners.get(str(point.id))):
                found.setdefault(owner[0], {})[owner[1]] = vector
        return found

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
        for name in (self.collection, self.sentences):
            if self.client.collection_exists(name):
                self.client.delete_collection(name)
        self.client.create_collection(
            self.collection,
            vectors_config={DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE)},
            # IDF modifier: Qdrant supplies BM25's inverse document frequency at query time.
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        if self.sentence_vectors:
            create_sentence_collection(self.client, self.collection, dimension)
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

    def vector_store(self, mode: RetrievalMode = RetrievalMode.HYBRID) -> SentenceVectorStore:
        """The LangChain vector store over this collection.

        Hybrid: it writes both vectors, and the sentence points when the collection has them.
        """
        return SentenceVectorStore(
            with_sentences=self.has_sentences,
            client=self.client,
            collection_name=self.collection,
            embedding=self.embeddings,
            sparse_embedding=self.sparse,
            retrieval_mode=mode,
            vector_name=DENSE,
            sparse_vector_name=SPARSE,
            # `load()` already checked the collection; validating here would embed a probe text.
            validate_collection_config=False,
        )

    def _qdrant_dimension(self) -> int | None:
        """Size of the collection's dense vectors; None when the collection does not exist."""
        if not self.client.collection_exists(self.collection):
            return None
        vectors: Any = self.client.get_collection(self.collection).config.params.vectors
        params = vectors.get(DENSE) if isinstance(vectors, dict) else None
        return params.size if params else None
