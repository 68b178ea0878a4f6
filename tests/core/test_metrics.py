"""Metric math against values computed by hand."""

import math

import pytest

from core.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from ingest.evaluate import _first_hits_only


def test_ndcg_binary_single_relevant_at_rank_3() -> None:
    # DCG = 1/log2(4) = 0.5; ideal DCG = 1/log2(2) = 1
    assert ndcg_at_k(["x", "y", "gold"], {"gold": 1}, 10) == pytest.approx(0.5)


def test_ndcg_graded_gains() -> None:
    # ranked gains 1, 0, 2 → DCG = 1 + 0 + 2/log2(4) = 2; ideal 2, 1 → 2 + 1/log2(3)
    ideal = 2 + 1 / math.log2(3)
    assert ndcg_at_k(["a", "z", "b"], {"a": 1, "b": 2}, 10) == pytest.approx(2 / ideal)


def test_ndcg_cut_at_k_and_no_relevant() -> None:
    assert ndcg_at_k(["x", "gold"], {"gold": 1}, 1) == 0.0
    assert ndcg_at_k(["x"], {}, 10) == 0.0


def test_recall_counts_fraction_of_relevant() -> None:
    qrels = {"a": 1, "b": 1, "c": 1, "d": 1}
    assert recall_at_k(["a", "x", "c"], qrels, 10) == pytest.approx(0.5)
    assert recall_at_k(["x", "a"], qrels, 1) == 0.0


def test_mrr_uses_first_relevant_rank() -> None:
    assert mrr_at_k(["x", "y", "a", "b"], {"a": 1, "b": 1}, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "a"], {"a": 1}, 2) == 0.0


def test_percentile_interpolates_like_numpy() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == pytest.approx(25.0)
    assert percentile(values, 95) == pytest.approx(38.5)
    assert percentile([], 50) == 0.0


def test_repeated_chunks_of_one_judged_section_count_once() -> None:
    ranked = _first_hits_only(["gold", "gold", "x"], {"gold": 1})
    assert ranked[0] == "gold" and ranked[1] != "gold"
    assert recall_at_k(ranked, {"gold": 1}, 3) == 1.0
    assert ndcg_at_k(ranked, {"gold": 1}, 10) == pytest.approx(1.0)
