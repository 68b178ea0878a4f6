"""Extractive answers rank sentences with the vectors the index stores, embedding only what it lacks."""

from __future__ import annotations

import math

import pytest

from chains.extractive import extractive_answer
from core.index import BookIndex
from core.sentences import split_sentences
from core.vectors import MIN_SENTENCE_WORDS
from tests.graphs.conftest import turn

QUESTION = "What does a ROS 2 topic do?"


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


async def test_an_extractive_turn_embeds_no_sentence(make_tutor, book_index: BookIndex) -> None:  # type: ignore[no-untyped-def]
    graph, _ = await make_tutor()
    embeddings = book_index.embeddings
    before = embeddings.texts_embedded  # type: ignore[attr-defined]
    result = await turn(graph, message=f"{QUESTION} (counted)", mode="ask")
    assert result["grounded"] and "[1]" in result["answer"]
    # The search embeds the question and, at most, the question without the book's common words;
    # the answer's sentences and the question's second use come from the index and its cache.
    assert embeddings.texts_embedded - before <= 2  # type: ignore[attr-defined]


async def test_stored_sentence_vectors_are_the_passages_sentences(book_index: BookIndex) -> None:
    passages = await _passages(book_index)
    sentences = {p.point_id: split_sentences(p.text, min_words=MIN_SENTENCE_WORDS) for p in passages}
    stored = book_index.stored_sentence_vectors({chunk: len(texts) for chunk, texts in sentences.items()})
    assert set(stored) == set(sentences)
    for chunk, vectors in stored.items():
        assert sorted(vectors) == list(range(len(sentences[chunk])))  # every sentence, by ordinal
        fresh = book_index.embeddings.embed_documents(sentences[chunk])
        # The very sentence each ordinal names (int8 vectors move a little with their batch).
        assert all(cosine(vectors[n], fresh[n]) > 0.95 for n in vectors)
    assert book_index.stored_sentence_vectors({}) == {}


async def test_the_answer_is_the_same_as_when_everything_is_embedded(book_index: BookIndex) -> None:
    from chains.retriever import BookRetriever

    retriever = BookRetriever(book_index)
    for question in (QUESTION, "How does a robot know where it is on a map?"):
        passages = await retriever.retrieve(question)
        known = await retriever.known_vectors(question, passages[:5])
        assert question in known and len(known) > 5
        reused = extractive_answer(question, passages, book_index.embeddings, known=known)
        embedded = extractive_answer(question, passages, book_index.embeddings)
        assert reused[0] == embedded[0]


async def test_without_stored_sentences_everything_is_embedded(
    make_tutor, book_index: BookIndex, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(book_index, "has_sentences", False)  # a collection built without them
    assert book_index.stored_sentence_vectors({"any": 3}) == {}
    graph, _ = await make_tutor()
    before = book_index.embeddings.texts_embedded  # type: ignore[attr-defined]
    result = await turn(graph, message=f"{QUESTION} (no sentences)", mode="ask")
    assert result["grounded"] and "[1]" in result["answer"] and result["sources"]
    assert book_index.embeddings.texts_embedded - before > 5  # type: ignore[attr-defined]


async def _passages(index: BookIndex) -> list:  # type: ignore[type-arg]
    from chains.retriever import BookRetriever

    passages = await BookRetriever(index).retrieve(QUESTION)
    assert passages and all(p.point_id for p in passages)
    return passages
