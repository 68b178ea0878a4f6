"""The tutor's retriever: hybrid search over the book, nudged toward the page the reader is on.

Search itself lives in `core.retrieval`; this adds what a tutor needs on top: a boost for passages
from the reader's current page (then chapter), and a count of calls so tests can prove that the
selection route never searches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from urllib.parse import urlparse

from core.index import BookIndex
from core.retrieval import Passage, search
from core.sentences import split_sentences
from core.text import append_without_overlap
from core.vectors import MIN_SENTENCE_WORDS

SAME_PAGE_BOOST = 0.25  # fused scores are raised by boost times their size
SAME_CHAPTER_BOOST = 0.10
CANDIDATES = 20  # searched before boosting, so a page's passage ranked 12th can still surface


def page_doc_path(page: str | None, docs_route: str = "docs") -> str | None:
    """The doc path of a page given as a URL (`https://site/docs/a/b#x`), a path (`/docs/a/b`) or `a/b`."""
    if not page:
        return None
    path = urlparse(page).path if "://" in page else page.split("#")[0].split("?")[0]
    path = path.strip("/")
    prefix = f"{docs_route.strip('/')}/"
    return path.removeprefix(prefix) if path.startswith(prefix) else path or None


class BookRetriever:
    """Hybrid retrieval with a current-page boost. `calls` counts searches made."""

    def __init__(self, index: BookIndex, *, fusion: str = "zscore", docs_route: str = "docs") -> None:
        self.index, self.fusion, self.docs_route = index, fusion, docs_route
        self.calls = 0

    async def retrieve(self, query: str, *, k: int = 5, page: str | None = None) -> list[Passage]:
        """The `k` best passages for `query`, boosted toward `page`'s doc and chapter."""
        self.calls += 1
        await self.index.require()
        current = page_doc_path(page, self.docs_route)
        found = await asyncio.to_thread(
            search,
            self.index,
            query,
            k=max(k, CANDIDATES) if current else k,  # more candidates only when there is a page to boost
            mode="hybrid",
            fusion=self.fusion,  # type: ignore[arg-type]
        )
        if current:
            # |score|: a z-score fusion can score a weak candidate below 0, and a boost must raise it.
            found = [replace(p, score=p.score + abs(p.score) * _boost(p.doc_path, current)) for p in found]
            found = sorted(found, key=lambda p: -p.score)
        return found[:k]

    async def known_vectors(self, query: str, passages: Sequence[Passage]) -> dict[str, list[float]]:
        """Text → vector for what an extractive answer ranks, as far as the index already has it.

        The query's vector (the search just embedded it) and the stored vectors of the passages'
        sentences (`BookIndex.stored_sentence_vectors`); whatever is missing the caller embeds itself.
        A passage's text is its chunk's body, so its sentences are `chunk_sentences` of the chunk.
        """
        sentences = {
            p.point_id: split_sentences(p.text, min_words=MIN_SENTENCE_WORDS) for p in passages if p.point_id
        }

        def lookup() -> dict[str, list[float]]:
            known = {query: self.index.embed_query(query)}
            stored = self.index.stored_sentence_vectors(
                {chunk: len(texts) for chunk, texts in sentences.items()}
            )
            for chunk, vectors in stored.items():
                known.update((sentences[chunk][n], vector) for n, vector in vectors.items())
            return known

        return await asyncio.to_thread(lookup)

    async def chapter(self, doc_path: str) -> str:
        """The whole page at `doc_path`, reassembled from its chunks in order (overlaps removed)."""
        records = await asyncio.to_thread(self.index.backend.page_chunks, self.index.collection, doc_path)
        parts: list[str] = []
        previous_anchor: str | None = None
        for record in sorted(records, key=lambda record: record.metadata.get("order", 0)):
            meta = record.metadata
            body = record.content.removeprefix(meta.get("heading_path", "") + "\n\n")
            if meta.get("anchor") == previous_anchor and parts:
                parts[-1] = append_without_overlap(parts[-1], body)
            else:
                # A new section: its heading went into metadata when the page was chunked.
                parts.append(f"## {meta['heading']}\n\n{body}" if meta.get("anchor") else body)
            previous_anchor = meta.get("anchor")
        return "\n\n".join(parts).strip()


def _boost(doc_path: str, current: str) -> float:
    if doc_path == current:
        return SAME_PAGE_BOOST
    if doc_path.split("/")[0] == current.split("/")[0]:
        return SAME_CHAPTER_BOOST
    return 0.0
