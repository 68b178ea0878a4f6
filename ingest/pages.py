"""The book's text per page, normalised, in Postgres.

The book's text per page, normalised, in Postgres: how the tutor checks that a reader's selection
really comes from the book (and from which section) without a search.

Pages are rebuilt from their chunks (overlaps removed, headings put back), so what is matched is
exactly what was indexed. Only pages whose text changed are written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from itertools import groupby

from core.index import BookIndex
from core.text import append_without_overlap, normalize_for_match
from ingest.splitter import Chunk


def page_text(chunks: Sequence[Chunk]) -> tuple[str, list[tuple[int, str, str]]]:
    """A page's normalised text and its sections as (offset, anchor, heading)."""
    text, sections = "", []
    for anchor, section in groupby(sorted(chunks, key=lambda c: c.order), key=lambda c: c.anchor):
        parts = list(section)
        body = ""
        for chunk in parts:
            body = append_without_overlap(body, normalize_for_match(chunk.text), separator=" ")
        heading = normalize_for_match(parts[0].heading) if anchor else ""
        start = len(text) + (1 if text else 0)
        sections.append((start, anchor, parts[0].heading))
        text = " ".join(filter(None, [text, heading, body]))
    return text, sections


async def sync_pages(index: BookIndex, chunks: Sequence[Chunk], present_sources: set[str] | None) -> None:
    """Write the pages whose text changed; drop pages whose files are gone."""
    rows = []
    for source, page_chunks in groupby(
        sorted(chunks, key=lambda c: (c.source, c.order)), key=lambda c: c.source
    ):
        chunk_list = list(page_chunks)
        normalized, sections = page_text(chunk_list)
        digest = hashlib.sha256(f"{normalized}\0{json.dumps(sections)}".encode()).hexdigest()
        first = chunk_list[0]
        rows.append(
            (
                index.namespace,
                source,
                first.doc_path,
                first.title,
                first.url.split("#")[0],
                digest,
                normalized,
                json.dumps(sections),
            )
        )
    async with index.db.pool.connection() as conn, conn.transaction():
        for row in rows:
            await conn.execute(
                "INSERT INTO book_pages (namespace, source, doc_path, title, url, page_hash, normalized,"
                " sections) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (namespace, source) DO UPDATE SET doc_path = excluded.doc_path,"
                " title = excluded.title, url = excluded.url, page_hash = excluded.page_hash,"
                " normalized = excluded.normalized, sections = excluded.sections"
                " WHERE book_pages.page_hash IS DISTINCT FROM excluded.page_hash",
                row,
            )
        if present_sources is not None:
            await conn.execute(
                "DELETE FROM book_pages WHERE namespace = %s AND NOT (source = ANY(%s))",
                (index.namespace, sorted(present_sources)),
            )
