"""Searching the book index: dense, sparse (BM25) or hybrid, fused inside Qdrant."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from qdrant_client import models

from core.index import DENSE, SPARSE, BookIndex

SearchMode = Literal["dense", "sparse", "hybrid"]
Fusion = Literal["rrf", "dbsf"]
# Each leg of a hybrid query contributes at least this many candidates to the fusion, so a passage
# ranked 12th by one leg and 2nd by the other can still win a top-5.
MIN_PREFETCH = 50


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk with what a reader needs to cite it."""

    chunk_id: str
    doc_path: str
    title: str
    heading: str
    heading_path: str
    anchor: str
    url: str
    score: float
    text: str
    order: int
    similarity: float | None = None  # cosine of the dense vectors (dense and hybrid modes)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def search(
    index: BookIndex,
    query: str,
    *,
    k: int = 5,
    mode: SearchMode = "hybrid",
    fusion: Fusion = "rrf",
    query_filter: models.Filter | None = None,
) -> list[Passage]:
    """The `k` best passages for `query`. The index must be loaded (`await index.require()`)."""
    client, collection = index.client, index.collection
    dense: list[float] | None = None
    if mode == "dense":
        dense = index.embeddings.embed_query(query)
        points = client.query_points(
            collection,
            query=dense,
            using=DENSE,
            limit=k,
            query_filter=query_filter,
            with_payload=True,
            with_vectors=[DENSE],
        ).points
    elif mode == "sparse":
        points = client.query_points(
            collection,
            query=_sparse_query(index, query),
            using=SPARSE,
            limit=k,
            query_filter=query_filter,
            with_payload=True,
        ).points
    else:
        dense = index.embeddings.embed_query(query)
        depth = max(k, MIN_PREFETCH)
        points = client.query_points(
            collection,
            prefetch=[
                models.Prefetch(query=dense, using=DENSE, limit=depth, filter=query_filter),
                models.Prefetch(
                    query=_sparse_query(index, query), using=SPARSE, limit=depth, filter=query_filter
                ),
            ],
            query=models.FusionQuery(fusion=models.Fusion(fusion)),
            limit=k,
            with_payload=True,
            with_vectors=[DENSE],
        ).points
    return [_passage(point, dense) for point in points]


def _sparse_query(index: BookIndex, query: str) -> models.SparseVector:
    vector = index.sparse.embed_query(query)
    return models.SparseVector(indices=vector.indices, values=vector.values)


def _cosine(a: list[float], b: Any) -> float | None:
    if not isinstance(b, list) or not b:
        return None
    va, vb = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va @ vb) / norm if norm else 0.0


def _passage(point: models.ScoredPoint, query_vector: list[float] | None = None) -> Passage:
    payload = point.payload or {}
    meta: dict[str, Any] = payload.get("metadata") or {}
    content: str = payload.get("page_content", "")
    heading_path = meta.get("heading_path", "")
    return Passage(
        chunk_id=str(meta.get("chunk_id", point.id)),
        doc_path=meta.get("doc_path", ""),
        title=meta.get("title", ""),
        heading=meta.get("heading", ""),
        heading_path=heading_path,
        anchor=meta.get("anchor", ""),
        url=meta.get("url", ""),
        score=float(point.score),
        # The indexed text starts with the heading path (it helps both retrievers); show the body.
        text=content.removeprefix(f"{heading_path}\n\n") if heading_path else content,
        order=int(meta.get("order", 0)),
        similarity=_cosine(query_vector, (point.vector or {}).get(DENSE))  # type: ignore[union-attr]
        if query_vector
        else None,
    )
