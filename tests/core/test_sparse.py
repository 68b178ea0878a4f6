"""The local BM25 encoder."""

import pytest

from core.sparse import BM25SparseEmbeddings, average_length


def test_terms_are_stemmed_lowercase_without_stop_words() -> None:
    encoder = BM25SparseEmbeddings()
    assert encoder.terms("How do the Nodes talk to each other?") == ["node", "talk"]


def test_document_weights_follow_bm25_tf_saturation() -> None:
    encoder = BM25SparseEmbeddings(avgdl=3, k1=1.2, b=0.75)
    vector = encoder.embed_documents(["robot robot arm"])[0]  # dl = 3 = avgdl → norm = k1
    weights = sorted(vector.values)
    assert weights == pytest.approx(sorted([2 * 2.2 / (2 + 1.2), 1 * 2.2 / (1 + 1.2)]))


def test_query_weights_are_one_per_distinct_term() -> None:
    vector = BM25SparseEmbeddings().embed_query("robot robots arm")
    assert vector.values == [1.0, 1.0]
    assert vector.indices == sorted(vector.indices)


def test_average_length() -> None:
    encoder = BM25SparseEmbeddings()
    assert average_length(encoder, ["robot arm", "one two three four"]) == pytest.approx(3.0)
    assert average_length(encoder, []) == 100.0


def test_urdu_text_is_tokenised() -> None:
    assert BM25SparseEmbeddings().terms("روبوٹ کیا ہے") == ["روبوٹ", "کیا", "ہے"]
