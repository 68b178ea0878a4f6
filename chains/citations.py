"""`[n]` citation markers: map them to the passages actually given, and quote the support.

Models cite passage numbers; readers need stable links. Markers naming no given passage are dropped
(never invented sources), the rest are renumbered in order of first use so that `[k]` in the answer
is `sources[k-1]`, and each source carries the sentence of its passage that the answer cites: the one
an extractive answer took, or for a model's answer the one sharing most words with the citing text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from typing_extensions import TypedDict

from core.retrieval import Passage
from core.sentences import split_sentences, words

_MARKERS = re.compile(r"\s?\[(\d+(?:\s*,\s*\d+)*)\]")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([.,;:!?۔])")


class Source(TypedDict):
    """A cited passage: `[n]` in the answer is `sources[n-1]`."""

    id: str  # stable chunk id
    title: str
    url: str  # deep link to the section
    heading: str
    quote: str  # the sentence of the passage that supports the answer
    score: float


def map_citations(
    answer: str, passages: Sequence[Passage], quotes: Mapping[int, str] | None = None
) -> tuple[str, list[Source]]:
    """Renumber valid markers by first use, drop unknown ones, and build the source list.

    `quotes` (passage index → sentence) is for callers that know which sentence they used (the
    extractive answer); a model's answer gets, for each passage, its sentence closest to the text
    that cites it.
    """
    order: list[int] = []  # passage indexes in order of first citation

    def renumber(match: re.Match[str]) -> str:
        kept = []
        for number in (int(n) for n in match.group(1).split(",")):
            if 1 <= number <= len(passages):
                if number - 1 not in order:
                    order.append(number - 1)
                kept.append(order.index(number - 1) + 1)
        unique = list(dict.fromkeys(kept))
        return (" " if match.group(0).startswith(" ") else "") + "".join(f"[{n}]" for n in unique)

    mapped = _MARKERS.sub(renumber, answer)
    mapped = _SPACE_BEFORE_PUNCT.sub(r"\1", mapped).strip()
    quotes = quotes or {}
    sources = [
        source_for(passages[i], _citing_text(mapped, position + 1), quotes.get(i))
        for position, i in enumerate(order)
    ]
    return mapped, sources


def source_for(passage: Passage, support: str, quote: str | None = None) -> Source:
    """The source entry of a passage; `quote` defaults to its sentence closest to `support`."""
    return Source(
        id=passage.chunk_id,
        title=passage.title,
        url=passage.url,
        heading=passage.heading,
        quote=quote if quote is not None else best_quote(passage.text, support),
        score=round(passage.score, 4),
    )


def best_quote(passage_text: str, support: str) -> str:
    """The passage sentence sharing the most words with `support` (first sentence on a tie)."""
    sentences = split_sentences(passage_text, min_words=3) or [" ".join(passage_text.split())[:300]]
    wanted = words(support)
    return max(sentences, key=lambda s: len(words(s) & wanted) / (1 + len(words(s)) ** 0.5))


def _citing_text(answer: str, number: int) -> str:
    """The sentences of the answer that carry marker `[number]`."""
    marker = f"[{number}]"
    return " ".join(s for s in re.split(r"(?<=[.!?۔])\s+", answer) if marker in s) or answer
