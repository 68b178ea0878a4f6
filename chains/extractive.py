"""Extractive answers: the tutor without a chat model.

The answer is made of the sentences of the retrieved passages (or of the reader's selection) that are
closest to the question — by the same embedding model the search uses, plus word overlap — each
followed by its `[n]` citation. Deterministic, offline, and always grounded: it can only say what
the book says. For a selection, the best sentence's score is also the evidence that the selection
answers the question at all (`SELECTION_SUPPORT_FLOOR`, measured by `tutor eval --selections`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from langchain_core.embeddings import Embeddings

from chains.citations import Source, map_citations
from core.retrieval import Passage
from core.sentences import split_sentences, words

PASSAGES_USED = 5  # sentences come from the best few passages only
MAX_SENTENCES = PASSAGES_USED
LEXICAL_WEIGHT = 0.3
RANK_PENALTY = 0.04  # a sentence from a lower-ranked passage must be clearly better to win
# One sentence per passage: the section that answers is often not the top one (on the sample book
# it is in the top 5 for 80% of the questions, first for about half). Quoting the best sentence of
# each of the five passages answers from the right one more often (80% of the book's questions; four
# passages 76%) than several sentences of the top passage would (59%); each keeps its own citation.
PER_PASSAGE = 1


@dataclass(frozen=True)
class _Candidate:
    passage: int  # index into the passages given
    position: int  # sentence position within the passage
    text: str


def extractive_answer(
    question: str,
    passages: Sequence[Passage],
    embeddings: Embeddings,
    *,
    max_sentences: int = MAX_SENTENCES,
    known: Mapping[str, Sequence[float]] | None = None,
) -> tuple[str, list[Source]]:
    """An answer stitched from the passages' best sentences, without a chat model.

    It has `[n]` citations, and sources whose
    `quote` is the very sentence the answer took from that passage. `known` maps texts (the
    question, sentences) to vectors the index already holds: only the others are embedded.
    """
    candidates = [
        _Candidate(i, j, sentence)
        for i, passage in enumerate(passages[:PASSAGES_USED])
        for j, sentence in enumerate(split_sentences(passage.text))
    ]
    if not candidates:
        return "", []
    best = _best(question, candidates, embeddings, max_sentences, per_passage=PER_PASSAGE, known=known)
    chosen = [c for _, c in best]
    chosen.sort(key=lambda c: (c.passage, c.position))
    answer = " ".join(f"{c.text} [{c.passage + 1}]" for c in chosen)
    return map_citations(answer, passages, quotes={c.passage: c.text for c in chosen})


@dataclass(frozen=True)
class SelectionReading:
    """What the reader's selection says about a question (the selection route without a model)."""

    sentences: list[str]  # the selection's sentences closest to the question, in text order
    quote: str  # the closest one of them: what a source for this answer quotes
    support: float  # its score (cosine + word overlap): under the floor, the selection does not answer


def read_selection(
    question: str, text: str, embeddings: Embeddings, *, max_sentences: int = 3
) -> SelectionReading:
    """The sentences of one text closest to the question, and how closely the best one matches it."""
    sentences = split_sentences(text, min_words=3) or [" ".join(text.split())[:500]]
    candidates = [_Candidate(0, j, s) for j, s in enumerate(sentences) if s]
    if not candidates:
        return SelectionReading([], "", 0.0)
    scored = _best(question, candidates, embeddings, max_sentences)
    support, top = scored[0]
    in_order = sorted((c for _, c in scored), key=lambda c: c.position)
    return SelectionReading([c.text for c in in_order], top.text, round(support, 4))


def _best(
    question: str,
    candidates: list[_Candidate],
    embeddings: Embeddings,
    limit: int,
    *,
    per_passage: int | None = None,
    known: Mapping[str, Sequence[float]] | None = None,
) -> list[tuple[float, _Candidate]]:
    """The best-scoring candidates with their scores, best first (vectors from `known` when there)."""
    texts = [question] + [c.text for c in candidates]
    vectors = dict(known or {})
    missing = list(dict.fromkeys(t for t in texts if t not in vectors))
    vectors.update(zip(missing, embeddings.embed_documents(missing) if missing else [], strict=True))
    query, rest = vectors[question], [vectors[c.text] for c in candidates]
    asked = words(question)
    scored = []
    for candidate, vector in zip(candidates, rest, strict=True):
        overlap = len(asked & words(candidate.text)) / (1 + len(asked))
        score = _cosine(query, vector) + LEXICAL_WEIGHT * overlap - RANK_PENALTY * candidate.passage
        scored.append((score, candidate))
    scored.sort(key=lambda pair: -pair[0])
    chosen: list[tuple[float, _Candidate]] = []
    for score, candidate in scored:
        if len(chosen) == limit:
            break
        if per_passage and sum(c.passage == candidate.passage for _, c in chosen) >= per_passage:
            continue
        # Skip near-repeats (chunk overlap repeats sentences across passages).
        if all(_jaccard(candidate.text, c.text) < 0.6 for _, c in chosen):
            chosen.append((score, candidate))
    return chosen


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _jaccard(a: str, b: str) -> float:
    wa, wb = words(a), words(b)
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0
