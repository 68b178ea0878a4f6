"""Incremental, idempotent indexing of documents into the book index.

LangChain's indexing API does the heavy lifting: each chunk is hashed (text + metadata), the
Postgres record manager says which hashes the collection already holds, and only new or changed
chunks are embedded and written. Cleanup is `scoped_full`: after the run, chunks of the sources seen
whose hash was not produced again are deleted (an edited file loses its old chunks). Sources whose
files are gone are deleted here too; files that failed to load keep their previous chunks.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.documents import Document
from langchain_core.indexing import aindex

from core.index import BookIndex, IndexMismatch
from core.providers import embedding_dimension
from core.sparse import average_length
from ingest.record_manager import PostgresRecordManager

ProgressCallback = Callable[[int], None]


@dataclass
class IngestSummary:
    """What an ingest run did. File counts are by source; `embedded` counts chunks embedded."""

    pages: int = 0  # pages (or corpus documents) read successfully this run
    added: int = 0
    updated: int = 0
    skipped: int = 0
    deleted: int = 0
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0
    problems: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return asdict(self)


async def sync_documents(
    index: BookIndex,
    docs: Sequence[Document],
    *,
    present_sources: set[str] | None = None,
    recreate: bool = False,
    on_progress: ProgressCallback | None = None,
) -> IngestSummary:
    """Make the collection hold exactly `docs` (each with a `source` in its metadata).

    `present_sources` is every source that still exists (loaded or not); recorded sources outside it
    are deleted. None means "only touch the sources in `docs`".
    """
    started = time.perf_counter()
    records = PostgresRecordManager(index.db.pool, index.namespace)
    # One ingest per collection at a time, across processes and machines.
    async with index.db.advisory_lock(index.namespace):
        info = None if recreate else await index.load()
        if info is None:
            await index.create(
                dimension=embedding_dimension(index.embeddings),
                sparse_avgdl=average_length(index.sparse, (d.page_content for d in docs)),
            )
        else:
            index.check_compatible(info)
            if index.sentence_vectors and not index.has_sentences:
                raise IndexMismatch(
                    f"collection '{index.collection}' was built without sentence vectors "
                    "(SENTENCE_VECTORS): re-ingest with `tutor ingest PATH --recreate`"
                )

        before = await records.keys_by_group()
        result = await aindex(
            _reporting(docs, on_progress),
            records,
            index.vector_store(),
            cleanup="scoped_full",
            source_id_key="source",
            key_encoder=document_key,
            batch_size=128,
        )
        gone = set(before) - present_sources if present_sources is not None else set()
        if gone:
            stale = await records.alist_keys(group_ids=sorted(gone))
            if stale:
                await index.vector_store().adelete(list(stale))
                await records.adelete_keys(stale)
        after = await records.keys_by_group()

    summary = _compare(before, after)
    summary.chunks = sum(len(keys) for keys in after.values())
    summary.embedded = result["num_added"] + result["num_updated"]
    await index.record_change(chunks=summary.chunks, changed=before != after)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def document_key(doc: Document) -> str:
    """The record key and Qdrant point id of a chunk.

    A UUID (Qdrant's id format) made from the SHA-256 of its text and metadata, so any change to
    either makes a new key.
    """
    payload = json.dumps([doc.page_content, doc.metadata], sort_keys=True, ensure_ascii=False)
    return str(uuid.UUID(bytes=hashlib.sha256(payload.encode()).digest()[:16]))


def _compare(before: dict[str, set[str]], after: dict[str, set[str]]) -> IngestSummary:
    """Per-source comparison of the records before and after a run."""
    summary = IngestSummary()
    for source in before.keys() | after.keys():
        if source not in before:
            summary.added += 1
        elif source not in after:
            summary.deleted += 1
        elif before[source] != after[source]:
            summary.updated += 1
        else:
            summary.skipped += 1
    return summary


def _reporting(docs: Iterable[Document], on_progress: ProgressCallback | None) -> Iterator[Document]:
    for doc in docs:
        yield doc
        if on_progress:
            on_progress(1)
