"""Searching the book index: dense, sparse (BM25) or hybrid.

Hybrid has three legs: the chunk vectors, BM25, and, when the collection has sentence vectors
(`core.vectors`), the chunks ranked by their closest sentence (a paraphrased question usually
restates one sentence, which a whole-chunk vector dilutes). `HYBRID_FUSION` says how they combine:
- `zscore` (default): each leg's scores standardized against the whole collection and added with
  weights (`core.fusion`), so a decisive match counts for what it is;
- `rrf` / `dbsf`: chunk vectors and BM25 fused by Qdrant's rank/score fusion (inside Qdrant, or
  the same functions in Python on pgvector), that ranking fused once more, with
  standard reciprocal rank fusion, with the sentence ranking.

Results are sections, not chunks: a long section is several chunks, and returning three of them
would crowd other sections out of a short top-k. Each section keeps its best-ranked chunk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from core.fusion import fuse_standardized, unit_mean
from core.index import BookIndex
from core.vector_backends import ChunkRecord

SearchMode = Literal["dense", "sparse", "hybrid"]
Fusion = Literal["zscore", "rrf", "dbsf"]
# Each leg of a hybrid query contributes at least this many candidates to the fusion, so a passage
# ranked 12th by one leg and 2nd by the other can still win a top-5.
MIN_PREFETCH = 50
# Chunks fetched per result wanted, so that collapsing chunks of one section still leaves k sections.
OVERFETCH = 3
# The usual RRF constant (Cormack et al.), for fusing the hybrid ranking with the sentence ranking.
RRF_K = 60
SENTENCES_PER_CHUNK = 2


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
    # Cosine of the query with the chunk or with its closest sentence, whichever is higher (dense and
    # hybrid modes): a passage that states the answer in one sentence is relevant however long it is.
    # (With `zscore` fusion the query vector is the one the vector legs search with, `core.fusion`.)
    similarity: float | None = None
    point_id: str = ""  # the chunk's id in the index (its sentence vectors point back at it)

    def as_json(self) -> dict[str, Any]:
        """The passage as a JSON-ready dict."""
        return asdict(self)


def search(
    index: BookIndex, query: str, *, k: int = 5, mode: SearchMode = "hybrid", fusion: Fusion = "zscore"
) -> list[Passage]:
    """The `k` best sections' passages for `query`. The index must be loaded (`await index.require()`)."""
    backend, collection = index.backend, index.collection
    candidates = k * OVERFETCH
    dense: list[float] | None = None
    closest_sentence: dict[str, float] = {}
    # Rankings are ids and scores only; texts are fetched for the few passages returned
    # (Qdrant's embedded mode deep-copies every payload a query returns).
    if mode == "dense":
        dense = index.embed_query(query)
        ranked = backend.dense(collection, dense, candidates)
    elif mode == "sparse":
        ranked = backend.sparse(collection, _query_terms(index, query), candidates)
    elif fusion == "zscore":
        dense, ranked, closest_sentence = _standardized(index, query, max(candidates, MIN_PREFETCH))
        return _top_sections(index, ranked, closest_sentence, k, dense)
    else:
        dense = index.embed_query(query)
        depth = max(candidates, MIN_PREFETCH)
        ranked = backend.rank_fused(collection, dense, _query_terms(index, query), depth, fusion)
        if index.has_sentences:
            closest_sentence = _closest_sentences(index, dense, depth)
            ranked = _fuse(list(ranked), list(closest_sentence))
    return _top_sections(index, ranked, closest_sentence, k, dense)


def _standardized(
    index: BookIndex, query: str, depth: int
) -> tuple[list[float], dict[str, float], dict[str, float]]:
    """`zscore` fusion of the legs' top `depth`, standardized and weighted by `core.fusion`.

    Returns (the vector legs' query vector, chunk id → fused score best first, chunk id → closest
    sentence's cosine).
    The vector legs search with the mean of the question's vector and the vector of the question
    without the collection's common words (`core.fusion`, query-term rarity).
    """
    stats = index.collection_stats()
    dense = index.embed_query(query)
    focused = index.sparse.without_common_words(query, stats.common_terms if stats else frozenset())
    if focused != query:
        dense = unit_mean(dense, index.embed_query(focused))
    terms = _query_terms(index, query)
    sentences = depth * SENTENCES_PER_CHUNK if index.has_sentences else 0
    legs = index.backend.legs(index.collection, dense, terms, depth, sentences)
    closest = _by_chunk(legs.sentences, depth)
    if stats is None:  # an empty collection
        return dense, {}, closest
    return dense, fuse_standardized(dense, legs.dense, legs.sparse, closest, stats, terms), closest


def _closest_sentences(index: BookIndex, dense: list[float], depth: int) -> dict[str, float]:
    """Chunk id → cosine of its closest sentence, best first, for the chunks of the closest sentences."""
    found = index.backend.closest_sentences(index.collection, dense, depth * SENTENCES_PER_CHUNK)
    return _by_chunk(found, depth)


def _by_chunk(sentences: list[tuple[str, float]], depth: int) -> dict[str, float]:
    """The first `depth` chunks of (chunk id, cosine) sentences best first: chunk → its closest sentence.

    Grouping is done here rather than in the store (Qdrant's embedded mode runs group-by queries
    point by point in Python, ~100 ms at book scale); a chunk has a handful of sentences, so
    `SENTENCES_PER_CHUNK` times `depth` sentences cover about `depth` chunks.
    """
    closest: dict[str, float] = {}
    for chunk, score in sentences:  # best first, so the first sentence seen of a chunk is its closest
        closest.setdefault(chunk, score)
    return dict(list(closest.items())[:depth])


def _fuse(*rankings: list[str]) -> dict[str, float]:
    """Reciprocal rank fusion of rankings of chunk ids (each best first): id → score, best first."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return dict(sorted(scores.items(), key=lambda item: -item[1]))


def _top_sections(
    index: BookIndex,
    ranked: dict[str, float],
    closest_sentence: dict[str, float],
    k: int,
    query_vector: list[float] | None,
) -> list[Passage]:
    """Passages of the first `k` distinct (page, section)s of `ranked`, each its best-ranked chunk.

    Chunks are fetched a batch at a time. Ids not found (the sentences of a chunk an interrupted
    ingest deleted point at nothing) are skipped.
    """
    ids, kept, seen = list(ranked), list[Passage](), set[tuple[str, str]]()
    batch = k + k // 2
    for start in range(0, len(ids), batch):
        wanted = ids[start : start + batch]
        by_id = index.backend.fetch(index.collection, wanted, with_vectors=query_vector is not None)
        for chunk_id in wanted:
            if (record := by_id.get(chunk_id)) is None:
                continue
            passage = _passage(record, ranked[chunk_id], query_vector, closest_sentence.get(chunk_id))
            # Points without a page (written by other tools) are their own section.
            section = (passage.doc_path, passage.anchor) if passage.doc_path else (passage.chunk_id, "")
            if section not in seen:
                seen.add(section)
                kept.append(passage)
                if len(kept) == k:
                    return kept
    return kept


def _query_terms(index: BookIndex, query: str) -> list[int]:
    """The query's BM25 term ids (each weighs 1; the store multiplies in their IDF)."""
    return list(index.sparse.embed_query(query).indices)


def _cosine(a: list[float], b: list[float] | None) -> float | None:
    if not b:
        return None
    va, vb = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va @ vb) / norm if norm else 0.0


def _passage(
    record: ChunkRecord,
    score: float,
    query_vector: list[float] | None = None,
    sentence_similarity: float | None = None,
) -> Passage:
    meta = record.metadata
    heading_path = meta.get("heading_path", "")
    similarity = _cosine(query_vector, record.vector) if query_vector else None
    if sentence_similarity is not None:
        similarity = max(similarity or -1.0, sentence_similarity)
    return Passage(
        chunk_id=str(meta.get("chunk_id", record.id)),
        doc_path=meta.get("doc_path", ""),
        title=meta.get("title", ""),
        heading=meta.get("heading", ""),
        heading_path=heading_path,
        anchor=meta.get("anchor", ""),
        url=meta.get("url", ""),
        score=float(score),
        # The indexed text starts with the heading path (it helps both retrievers); show the body.
        text=record.content.removeprefix(f"{heading_path}\n\n") if heading_path else record.content,
        order=int(meta.get("order", 0)),
        similarity=similarity,
        point_id=record.id,
    )
