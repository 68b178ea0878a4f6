"""Score-aware fusion of the hybrid legs (`HYBRID_FUSION=zscore`, the default).

Rank fusion (RRF) keeps only the order of each leg's results, so a decisive keyword match (a query
term found in one section and nowhere else) counts no more than a marginal one, and two dense-type
legs (chunk vectors, closest sentence) outvote BM25 two to one. On the sample book's plain questions
that made hybrid worse than either dense or BM25 alone.

Here each leg's score is standardized against what the same query scores over the whole
collection, z = (score - mean) / sd, and the z-scores are added with weights. A match that
stands far above the collection counts for much; one that barely stands out counts for little, and
the legs are on one scale whatever their raw units (cosines, BM25 points).

The collection's distribution comes without scoring every point:
- vector legs: with the unit vectors' mean m and covariance C (computed once per index version),
  a query q's cosines have mean q·m and variance qᵀCq, exactly;
- BM25: the returned candidates with every other point counted as 0 (most share no term with the
  query; the rest score below the last candidate), so the estimate needs only the collection size.

Query-term rarity: words found in most of the collection ("ROS 2" is in the heading path of a
whole module of the sample book) tell nothing about which section answers, yet they dominate a
short question's vector. The vector legs search with the mean of the question's vector and that of
the question without them (`COMMON_TERM_SHARE`; the mean, not the shortened question alone, which
loses meaning when a common word carried it: "ROS 1 and ROS 2"). BM25 needs no such help, its IDF
already discounts them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.vector_backends import VectorBackend

# Weights of the legs' z-scores (dense chunk vectors weigh 1). Chosen on the `tune` halves of
# book/questions.jsonl and book/plain_questions.jsonl (README, "Measured"). BM25's weight is
# SPARSE_WEIGHT times its coverage of the question: the best BM25 score over the most the
# question's terms could score (the sum of their IDFs), capped at MAX_COVERAGE. A question in the
# book's words is matched term for term (coverage ~1.4 on the plain set) and BM25 is trusted; a
# paraphrase shares a stray word or two with any section (coverage ~0.5) and BM25 barely counts.
SPARSE_WEIGHT = 0.3
MAX_COVERAGE = 2.0
SENTENCE_WEIGHT = 0.5
# A sample this large estimates a mean and covariance well; a huge collection is not read whole.
MAX_STATS_POINTS = 20_000
# A term in more than this share of the chunks is left out of the question the vector legs embed.
COMMON_TERM_SHARE = 0.5


@dataclass(frozen=True)
class VectorStats:
    """Mean and covariance of a collection's unit vectors, and how many points it holds."""

    mean: np.ndarray
    cov: np.ndarray
    count: int

    def standardizer(self, unit_query: np.ndarray) -> tuple[float, float]:
        """(mean, sd) of the query's cosines with the collection's vectors."""
        variance = float(unit_query @ self.cov @ unit_query)
        return float(unit_query @ self.mean), max(variance, 1e-12) ** 0.5


@dataclass(frozen=True)
class CollectionStats:
    """What `zscore` fusion needs to know of a collection (`BookIndex.collection_stats`)."""

    chunks: VectorStats
    sentences: VectorStats | None
    common_terms: frozenset[int]  # BM25 term ids found in more than COMMON_TERM_SHARE of the chunks
    document_frequency: Mapping[int, int]  # BM25 term id → chunks of the sample that contain it
    size: int  # points in the collection (the sample above holds at most MAX_STATS_POINTS)

    def idf(self, term: int) -> float:
        """BM25's inverse document frequency of a term, as Qdrant's IDF modifier computes it."""
        n = self.document_frequency.get(term, 0)
        return math.log(1 + (self.chunks.count - n + 0.5) / (n + 0.5)) if n else 0.0


def collection_stats(backend: VectorBackend, collection: str, sentences: bool) -> CollectionStats | None:
    """Statistics of a book collection (and of its sentence vectors, when it has them); None when empty."""
    document_frequency: Counter[int] = Counter()
    batches = []
    for vectors, terms in backend.chunk_sample(collection, MAX_STATS_POINTS):
        batches.append(vectors)
        for point_terms in terms:
            document_frequency.update(point_terms)
    chunks = _vector_stats(batches)
    if chunks is None:
        return None
    common = {term for term, df in document_frequency.items() if df > COMMON_TERM_SHARE * chunks.count}
    sentence_stats = (
        _vector_stats(backend.sentence_sample(collection, MAX_STATS_POINTS)) if sentences else None
    )
    return CollectionStats(
        chunks=chunks,
        sentences=sentence_stats,
        common_terms=frozenset(common),
        document_frequency=dict(document_frequency),
        size=max(backend.count(collection), chunks.count),
    )


def _vector_stats(batches: Iterable[np.ndarray]) -> VectorStats | None:
    """Mean and covariance of the unit vectors of the batches."""
    total, outer, count = None, None, 0
    for vectors in batches:
        if not len(vectors):
            continue
        batch = np.asarray(vectors, dtype=np.float64)
        batch /= np.maximum(np.linalg.norm(batch, axis=1, keepdims=True), 1e-12)
        total = batch.sum(0) if total is None else total + batch.sum(0)
        outer = batch.T @ batch if outer is None else outer + batch.T @ batch
        count += len(batch)
    if not count or total is None or outer is None:
        return None
    mean = total / count
    return VectorStats(mean=mean, cov=outer / count - np.outer(mean, mean), count=count)


def unit_mean(a: list[float], b: list[float]) -> list[float]:
    """The unit vector along a + b: the mean direction of two unit vectors."""
    total = np.asarray(a, dtype=np.float64) + np.asarray(b, dtype=np.float64)
    return (total / max(float(np.linalg.norm(total)), 1e-12)).tolist()


def fuse_standardized(
    query_vector: list[float],
    dense: Mapping[str, float],
    sparse: Mapping[str, float],
    closest_sentence: Mapping[str, float],
    stats: CollectionStats,
    query_terms: Sequence[int],
) -> dict[str, float]:
    """Chunk id → weighted sum of the legs' z-scores, best first, over every leg's candidates.

    A candidate that one leg did not return gets that leg's lowest returned score (it ranks below
    all of them), or 0 for BM25 (no shared term, as far as the estimate is concerned).
    """
    unit = np.asarray(query_vector, dtype=np.float64)
    unit /= max(float(np.linalg.norm(unit)), 1e-12)
    legs = [(dense, *stats.chunks.standardizer(unit), 1.0, min(dense.values(), default=0.0))]
    if sparse:
        values = np.fromiter(sparse.values(), dtype=np.float64)
        mean = float(values.sum()) / stats.size
        variance = float((values**2).sum()) / stats.size - mean**2
        most = sum(stats.idf(term) for term in set(query_terms))
        coverage = min(max(sparse.values()) / most, MAX_COVERAGE) if most else 0.0
        legs.append((sparse, mean, max(variance, 1e-12) ** 0.5, SPARSE_WEIGHT * coverage, 0.0))
    if closest_sentence and stats.sentences:
        floor = min(closest_sentence.values())
        legs.append((closest_sentence, *stats.sentences.standardizer(unit), SENTENCE_WEIGHT, floor))
    candidates = set(dense) | set(sparse) | set(closest_sentence)
    scores = {
        chunk: sum(weight * (leg.get(chunk, missing) - mean) / sd for leg, mean, sd, weight, missing in legs)
        for chunk in candidates
    }
    return dict(sorted(scores.items(), key=lambda item: -item[1]))
