"""Where the book's vectors live: Qdrant or Postgres (pgvector), behind one small interface.

`BookIndex` (`core.index`) keeps its bookkeeping in Postgres either way and asks a backend for
everything that touches vectors: creating a collection, the LangChain vector store the indexing
API writes through, and the few reads search needs (each leg's ranking as chunk id → score, the
chunks' stored text and vectors, the sample fusion statistics are computed from). Search logic
itself (`core.retrieval`, `core.fusion`) is the same code on both.

- `qdrant` (`VECTOR_STORE=qdrant`): embedded local mode under `TUTOR_HOME`, or a server/cluster at
  `QDRANT_URL` — the path for large deployments.
- `pgvector` (`VECTOR_STORE=pgvector`): tables in the same Postgres as everything else
  (langchain-postgres' `PGVectorStore` for the chunks, plus BM25 postings and sentence vectors), so
  one database is the whole deployment and embedded Postgres serves several worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from langchain_core.vectorstores import VectorStore

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from core.db import Database
    from core.settings import Settings
    from core.sparse import BM25SparseEmbeddings

__all__ = ["ChunkRecord", "SearchLegs", "VectorBackend", "VectorStoreUnavailable", "open_backend"]

RankFusion = Literal["rrf", "dbsf"]


class VectorStoreUnavailable(RuntimeError):
    """The vector store did not answer (a 503 `vector_store_unavailable` for API clients)."""


@dataclass(frozen=True)
class ChunkRecord:
    """A stored chunk: its id, text, metadata and (when asked for) its dense vector."""

    id: str
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)
    vector: list[float] | None = None


@dataclass(frozen=True)
class SearchLegs:
    """The three rankings hybrid search fuses, each best first."""

    dense: dict[str, float]  # chunk id → cosine
    sparse: dict[str, float]  # chunk id → BM25 score
    sentences: list[tuple[str, float]]  # (chunk id, cosine) of the closest sentences


class VectorBackend(Protocol):
    """What `BookIndex` and search need from a vector store. Reads are blocking (search runs in a thread)."""

    kind: str  # "qdrant" or "pgvector"
    location: str  # where the vectors live, part of the bookkeeping namespace

    def dimension(self, collection: str) -> int | None:
        """Size of the collection's chunk vectors; None when the collection does not exist."""
        ...

    def has_sentences(self, collection: str) -> bool:
        """Whether the collection has sentence vectors next to it."""
        ...

    async def create(self, collection: str, *, dimension: int, sentences: bool) -> None:
        """(Re)create the collection empty (and its sentence vectors when asked)."""
        ...

    def vector_store(
        self, collection: str, *, embeddings: Embeddings, sparse: BM25SparseEmbeddings, sentences: bool
    ) -> VectorStore:
        """The LangChain vector store the indexing API writes chunks (and their sentences) through."""
        ...

    def count(self, collection: str) -> int:
        """Chunks in the collection (0 when it does not exist); raises when the store does not answer."""
        ...

    def dense(self, collection: str, vector: list[float], limit: int) -> dict[str, float]:
        """Chunk id → cosine with `vector`, best first."""
        ...

    def sparse(self, collection: str, terms: Sequence[int], limit: int) -> dict[str, float]:
        """Chunk id → BM25 score of the query's term ids, best first."""
        ...

    def closest_sentences(self, collection: str, vector: list[float], limit: int) -> list[tuple[str, float]]:
        """(chunk id, cosine) of the `limit` sentences closest to `vector`, best first."""
        ...

    def legs(
        self, collection: str, vector: list[float], terms: Sequence[int], depth: int, sentences: int
    ) -> SearchLegs:
        """`dense`, `sparse` (top `depth` each) and `closest_sentences` (top `sentences`; 0: none) at once.

        In as few requests as the store allows: under load every request a search thread waits
        for is another wait for the interpreter lock.
        """
        ...

    def rank_fused(
        self, collection: str, vector: list[float], terms: Sequence[int], depth: int, fusion: RankFusion
    ) -> dict[str, float]:
        """Chunk vectors and BM25 (top `depth` each) fused by `fusion`: chunk id → score, best first."""
        ...

    def fetch(self, collection: str, ids: Sequence[str], *, with_vectors: bool) -> dict[str, ChunkRecord]:
        """The stored chunks of `ids` that exist."""
        ...

    def page_chunks(self, collection: str, doc_path: str) -> list[ChunkRecord]:
        """Every chunk of one page (any order)."""
        ...

    def chunk_sample(self, collection: str, limit: int) -> Iterator[tuple[np.ndarray, list[Sequence[int]]]]:
        """Batches of up to `limit` chunks in all: (dense vectors, each chunk's BM25 term ids)."""
        ...

    def sentence_sample(self, collection: str, limit: int) -> Iterator[np.ndarray]:
        """Batches of up to `limit` sentence vectors in all."""
        ...

    def sentence_vectors(
        self, collection: str, chunks: Mapping[str, int]
    ) -> dict[str, dict[int, list[float]]]:
        """Chunk id → {ordinal of the sentence in `chunk_sentences(...)`: its stored vector}.

        `chunks` maps each chunk id to its number of sentences.
        """
        ...

    def close(self) -> None:
        """Release clients and connections."""
        ...


async def open_backend(settings: Settings, db: Database) -> VectorBackend:
    """The configured backend (`VECTOR_STORE`), opened; pgvector shares `db`'s Postgres."""
    import asyncio

    if settings.vector_store == "pgvector":
        from core.vector_backends.pgvector import PgVectorBackend

        return await PgVectorBackend.open(db)
    from core.vector_backends.qdrant import QdrantBackend

    return await asyncio.to_thread(QdrantBackend.open, settings)
