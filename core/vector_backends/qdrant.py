"""The Qdrant backend: embedded local mode under TUTOR_HOME, or a server/cluster at QDRANT_URL.

A book collection's points carry a `dense` and a `sparse` (BM25, IDF applied by Qdrant) vector;
its sentences live in `<collection>-sentences` (`core.vectors`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_qdrant import RetrievalMode
from qdrant_client import QdrantClient, models

from core.settings import Settings
from core.sparse import BM25SparseEmbeddings
from core.vector_backends import ChunkRecord, RankFusion, SearchLegs
from core.vectors import (
    CHUNK_KEY,
    DENSE,
    SPARSE,
    SentenceVectorStore,
    create_sentence_collection,
    sentence_collection,
    sentence_point_id,
)


class VectorStoreLocked(RuntimeError):
    """Another process holds the embedded Qdrant folder."""


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
            "point TUTOR_HOME at another folder, run a Qdrant server and set QDRANT_URL, or use "
            "VECTOR_STORE=pgvector."
        ) from exc


def qdrant_location(settings: Settings) -> str:
    """Where the vectors live, as part of the bookkeeping key: two stores never share records."""
    return settings.qdrant_url or f"local:{settings.qdrant_path.resolve()}"


class QdrantBackend:
    """`VectorBackend` over a Qdrant client."""

    kind = "qdrant"

    def __init__(self, client: QdrantClient, location: str) -> None:
        self.client, self.location = client, location

    @classmethod
    def open(cls, settings: Settings) -> QdrantBackend:
        """The configured Qdrant (raises `VectorStoreLocked` when another process holds local mode)."""
        return cls(open_qdrant(settings), qdrant_location(settings))

    def dimension(self, collection: str) -> int | None:
        """Size of the collection's dense vectors; None when the collection does not exist."""
        if not self.client.collection_exists(collection):
            return None
        vectors: Any = self.client.get_collection(collection).config.params.vectors
        params = vectors.get(DENSE) if isinstance(vectors, dict) else None
        return params.size if params else None

    def has_sentences(self, collection: str) -> bool:
        """Whether the sentence collection exists."""
        return self.client.collection_exists(sentence_collection(collection))

    async def create(self, collection: str, *, dimension: int, sentences: bool) -> None:
        """(Re)create the collection and, when asked, its sentence collection."""
        for name in (collection, sentence_collection(collection)):
            if self.client.collection_exists(name):
                self.client.delete_collection(name)
        self.client.create_collection(
            collection,
            vectors_config={DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE)},
            # IDF modifier: Qdrant supplies BM25's inverse document frequency at query time.
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        if sentences:
            create_sentence_collection(self.client, collection, dimension)

    def vector_store(
        self, collection: str, *, embeddings: Embeddings, sparse: BM25SparseEmbeddings, sentences: bool
    ) -> SentenceVectorStore:
        """LangChain's Qdrant store (hybrid: both vectors), writing sentence points too when asked."""
        return SentenceVectorStore(
            with_sentences=sentences,
            client=self.client,
            collection_name=collection,
            embedding=embeddings,
            sparse_embedding=sparse,
            retrieval_mode=RetrievalMode.HYBRID,
            vector_name=DENSE,
            sparse_vector_name=SPARSE,
            # The index already checked the collection; validating here would embed a probe text.
            validate_collection_config=False,
        )

    def count(self, collection: str) -> int:
        """Points in the collection (0 when it does not exist yet)."""
        if not self.client.collection_exists(collection):
            return 0
        return int(self.client.count(collection, exact=True).count)

    def dense(self, collection: str, vector: list[float], limit: int) -> dict[str, float]:
        """Chunk id → cosine, best first."""
        points = self.client.query_points(collection, query=vector, using=DENSE, limit=limit).points
        return {str(p.id): p.score for p in points}

    def sparse(self, collection: str, terms: Sequence[int], limit: int) -> dict[str, float]:
        """Chunk id → BM25 score, best first."""
        points = self.client.query_points(collection, query=_terms(terms), using=SPARSE, limit=limit).points
        return {str(p.id): p.score for p in points}

    def closest_sentences(self, collection: str, vector: list[float], limit: int) -> list[tuple[str, float]]:
        """(chunk id, cosine) of the closest sentences, best first."""
        hits = self.client.query_points(
            sentence_collection(collection), query=vector, limit=limit, with_payload=[CHUNK_KEY]
        ).points
        return [(str((hit.payload or {}).get(CHUNK_KEY)), hit.score) for hit in hits]

    def legs(
        self, collection: str, vector: list[float], terms: Sequence[int], depth: int, sentences: int
    ) -> SearchLegs:
        """The three rankings; the sentences are another collection, so a separate query."""
        return SearchLegs(
            dense=self.dense(collection, vector, depth),
            sparse=self.sparse(collection, terms, depth),
            sentences=self.closest_sentences(collection, vector, sentences) if sentences else [],
        )

    def rank_fused(
        self, collection: str, vector: list[float], terms: Sequence[int], depth: int, fusion: RankFusion
    ) -> dict[str, float]:
        """Qdrant's own `rrf` / `dbsf` of the two chunk legs."""
        points = self.client.query_points(
            collection,
            prefetch=[
                models.Prefetch(query=vector, using=DENSE, limit=depth),
                models.Prefetch(query=_terms(terms), using=SPARSE, limit=depth),
            ],
            query=models.FusionQuery(fusion=models.Fusion(fusion)),
            limit=depth,
        ).points
        return {str(p.id): p.score for p in points}

    def fetch(self, collection: str, ids: Sequence[str], *, with_vectors: bool) -> dict[str, ChunkRecord]:
        """The stored chunks of `ids` (missing ones left out)."""
        records = self.client.retrieve(
            collection, list(ids), with_payload=True, with_vectors=[DENSE] if with_vectors else False
        )
        return {str(r.id): _record(r) for r in records}

    def page_chunks(self, collection: str, doc_path: str) -> list[ChunkRecord]:
        """Every chunk whose metadata names `doc_path`."""
        points, _ = self.client.scroll(
            collection,
            scroll_filter=models.Filter(
                must=[models.FieldCondition(key="metadata.doc_path", match=models.MatchValue(value=doc_path))]
            ),
            limit=10_000,
            with_payload=True,
        )
        return [_record(p) for p in points]

    def chunk_sample(self, collection: str, limit: int) -> Iterator[tuple[np.ndarray, list[Sequence[int]]]]:
        """Batches of dense vectors and sparse term ids, scrolled."""
        for points in self._scroll(collection, [DENSE, SPARSE], limit):
            named = [p.vector if isinstance(p.vector, dict) else {} for p in points]
            yield (
                np.asarray([v[DENSE] for v in named], dtype=np.float64),
                [getattr(v.get(SPARSE), "indices", ()) for v in named],
            )

    def sentence_sample(self, collection: str, limit: int) -> Iterator[np.ndarray]:
        """Batches of sentence vectors, scrolled."""
        for points in self._scroll(sentence_collection(collection), True, limit):
            yield np.asarray([p.vector for p in points], dtype=np.float64)

    def sentence_vectors(
        self, collection: str, chunks: Mapping[str, int]
    ) -> dict[str, dict[int, list[float]]]:
        """Stored sentence vectors of the chunks: one lookup by the point ids their ordinals make."""
        wanted = {
            sentence_point_id(chunk, ordinal): (chunk, ordinal)
            for chunk, count in chunks.items()
            for ordinal in range(count)
        }
        found: dict[str, dict[int, list[float]]] = {}
        points = self.client.retrieve(sentence_collection(collection), list(wanted), with_vectors=True)
        for point in points:
            vector: Any = point.vector  # the sentence collection has one unnamed dense vector
            if isinstance(vector, list) and (owner := wanted.get(str(point.id))):
                found.setdefault(owner[0], {})[owner[1]] = vector
        return found

    def close(self) -> None:
        """Close the client (releases the local-mode folder)."""
        self.client.close()

    def _scroll(self, collection: str, using: Any, limit: int) -> Iterator[list[models.Record]]:
        seen, offset = 0, None
        while seen < limit:
            points, offset = self.client.scroll(
                collection, limit=1024, offset=offset, with_payload=False, with_vectors=using
            )
            if points:
                yield points
            seen += len(points)
            if offset is None:
                break


def _terms(terms: Sequence[int]) -> models.SparseVector:
    """A BM25 query: weight 1 per term (the collection's IDF modifier weighs them)."""
    return models.SparseVector(indices=list(terms), values=[1.0] * len(terms))


def _record(point: models.Record) -> ChunkRecord:
    payload = point.payload or {}
    vector = (point.vector or {}).get(DENSE) if isinstance(point.vector, dict) else None
    return ChunkRecord(
        id=str(point.id),
        content=payload.get("page_content", ""),
        metadata=payload.get("metadata") or {},
        vector=[float(x) for x in vector] if isinstance(vector, list) else None,  # type: ignore[arg-type]
    )
