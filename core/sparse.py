"""BM25 term weights as Qdrant sparse vectors, computed locally (no model download).

Documents get the BM25 term-frequency part, tf·(k1+1) / (tf + k1·(1 − b + b·dl/avgdl)); queries get
weight 1 per distinct term. The collection's sparse vector is created with Qdrant's IDF modifier, so
Qdrant multiplies in the inverse document frequency at query time and the dot product is BM25.
`avgdl` is measured on the corpus when a collection is created and stored with it.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable, Set

import Stemmer
from langchain_qdrant import SparseEmbeddings, SparseVector

# Common English function words: they carry no topic and would only dilute the sparse match.
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me
    more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves""".split()
)
_TOKEN = re.compile(r"\w+", re.UNICODE)


class BM25SparseEmbeddings(SparseEmbeddings):
    r"""Snowball-stemmed BM25 over `\w+` tokens; term ids are crc32 of the stem."""

    def __init__(self, avgdl: float = 100.0, k1: float = 1.2, b: float = 0.75) -> None:
        if avgdl <= 0:
            raise ValueError("avgdl must be positive")
        self.avgdl, self.k1, self.b = avgdl, k1, b
        self._stemmer = Stemmer.Stemmer("english")

    def terms(self, text: str) -> list[str]:
        """The stemmed, stop-word-free terms of `text`, in order."""
        words = [w for w in _TOKEN.findall(text.lower()) if w not in STOP_WORDS]
        return list(self._stemmer.stemWords(words))

    def without_common_words(self, text: str, common_terms: Set[int]) -> str:
        """`text` without the words all of whose terms are in `common_terms` (term ids).

        `text` itself when nothing else would be left.
        """
        kept = [
            word
            for word in text.split()
            if not (ids := {_term_id(term) for term in self.terms(word)}) or not ids <= common_terms
        ]
        return " ".join(kept) if len(kept) < len(text.split()) and self.terms(" ".join(kept)) else text

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        """BM25 term weights of each text."""
        return [self._document_vector(self.terms(text)) for text in texts]

    def embed_query(self, text: str) -> SparseVector:
        """The query's terms, each with weight 1 (the collection's IDF modifier weighs them)."""
        ids = sorted({_term_id(term) for term in self.terms(text)})
        return SparseVector(indices=ids, values=[1.0] * len(ids))

    def _document_vector(self, terms: list[str]) -> SparseVector:
        length_norm = self.k1 * (1 - self.b + self.b * len(terms) / self.avgdl)
        weights: dict[int, float] = {}
        for term, tf in Counter(terms).items():
            # Two stems hashing to one id add up, which is what a shared term would do anyway.
            term_id = _term_id(term)
            weights[term_id] = weights.get(term_id, 0.0) + tf * (self.k1 + 1) / (tf + length_norm)
        ids = sorted(weights)
        return SparseVector(indices=ids, values=[weights[i] for i in ids])


def average_length(encoder: BM25SparseEmbeddings, texts: Iterable[str]) -> float:
    """Mean number of terms per text: the `avgdl` a new collection is created with."""
    lengths = [len(encoder.terms(text)) for text in texts]
    return max(1.0, sum(lengths) / len(lengths)) if lengths else 100.0


def _term_id(term: str) -> int:
    return zlib.crc32(term.encode("utf-8"))
