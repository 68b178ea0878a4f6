"""Score-aware fusion (`core.fusion`): collection statistics, standardization, query-term rarity."""

from __future__ import annotations

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from core.fusion import COMMON_TERM_SHARE, collection_stats, fuse_standardized, unit_mean
from core.sparse import BM25SparseEmbeddings
from core.vector_backends.qdrant import QdrantBackend
from core.vectors import DENSE, SPARSE

TEXTS = [
    "ROS 2 topics carry messages between nodes",
    "ROS 2 services answer one request",
    "ROS 2 actions report feedback while they run",
    "Gazebo simulates sensors",
]


@pytest.fixture
def collection() -> tuple[QdrantClient, np.ndarray]:
    """A real Qdrant (local, in memory) collection of four points with both named vectors."""
    client = QdrantClient(":memory:")
    client.create_collection(
        "c",
        vectors_config={DENSE: models.VectorParams(size=3, distance=models.Distance.COSINE)},
        sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    vectors = np.random.default_rng(7).normal(size=(len(TEXTS), 3))
    encoder = BM25SparseEmbeddings()
    client.upsert(
        "c",
        [
            models.PointStruct(
                id=n,
                vector={DENSE: vector.tolist(), SPARSE: models.SparseVector(**sparse.model_dump())},
                payload={},
            )
            for n, (vector, sparse) in enumerate(zip(vectors, encoder.embed_documents(TEXTS), strict=True))
        ],
    )
    return client, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_a_querys_cosine_distribution_comes_from_the_vectors_mean_and_covariance(collection) -> None:  # type: ignore[no-untyped-def]
    client, unit_vectors = collection
    stats = collection_stats(QdrantBackend(client, "memory"), "c", False)
    assert stats is not None and stats.chunks.count == stats.size == len(TEXTS) and stats.sentences is None
    query = np.array([0.3, -1.0, 0.5])
    query /= np.linalg.norm(query)
    cosines = unit_vectors @ query
    mean, sd = stats.chunks.standardizer(query)
    assert (mean, sd) == pytest.approx((cosines.mean(), cosines.std()))


def test_common_terms_are_those_in_more_than_half_of_the_chunks(collection) -> None:  # type: ignore[no-untyped-def]
    client, _ = collection
    stats = collection_stats(QdrantBackend(client, "memory"), "c", False)
    assert stats is not None and COMMON_TERM_SHARE == 0.5
    encoder = BM25SparseEmbeddings()
    assert (
        encoder.without_common_words("What is a ROS 2 service?", stats.common_terms) == "What is a service?"
    )
    # Nothing but common words: the question is kept whole rather than emptied.
    assert encoder.without_common_words("ROS 2", stats.common_terms) == "ROS 2"
    assert encoder.without_common_words("Gazebo sensors", stats.common_terms) == "Gazebo sensors"


def test_an_empty_collection_has_no_statistics() -> None:
    client = QdrantClient(":memory:")
    client.create_collection(
        "e", vectors_config={DENSE: models.VectorParams(size=3, distance=models.Distance.COSINE)}
    )
    assert collection_stats(QdrantBackend(client, "memory"), "e", False) is None


def test_a_decisive_keyword_match_outweighs_a_marginal_dense_lead(collection) -> None:  # type: ignore[no-untyped-def]
    client, unit_vectors = collection
    stats = collection_stats(QdrantBackend(client, "memory"), "c", False)
    assert stats is not None
    query = unit_vectors[0] + unit_vectors[1]  # equally close to points 0 and 1
    dense = {"0": float(unit_vectors[0] @ query) + 0.01, "1": float(unit_vectors[1] @ query)}
    # Point 1 alone shares a rare term with the query; rank fusion would keep point 0 first.
    services = BM25SparseEmbeddings().embed_query("services").indices
    fused = fuse_standardized(query.tolist(), dense, {"1": 4.0}, {}, stats, services)
    assert next(iter(fused)) == "1"
    # Without the keyword, the dense lead decides; a leg's missing candidates score its floor.
    assert next(iter(fuse_standardized(query.tolist(), dense, {}, {}, stats, services))) == "0"


def test_unit_mean_is_the_direction_between_two_unit_vectors() -> None:
    assert unit_mean([1.0, 0.0], [0.0, 1.0]) == pytest.approx([2**-0.5, 2**-0.5])
