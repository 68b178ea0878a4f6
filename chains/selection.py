"""Is the reader's selection really from the book? A normalised text match, not a search.

Whitespace, case, punctuation and Markdown syntax are ignored on both sides (the reader selects
rendered text; the index holds Markdown), so a highlighted paragraph is found exactly, with the
section it starts in. Uses the `book_pages` table written at ingest; never the retriever.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.db import Database
from core.text import normalize_for_match

MIN_MATCH_CHARS = 12  # "the robot" occurs everywhere: too short to say where it comes from


@dataclass(frozen=True)
class VerifiedSelection:
    """Where a reader's selection occurs in the book, if it does."""

    doc_path: str
    title: str
    url: str  # deep link to the section the selection starts in
    heading: str
    anchor: str


async def verify_selection(db: Database, namespace: str, selection: str) -> VerifiedSelection | None:
    """Where in the indexed book `selection` occurs, or None."""
    needle = normalize_for_match(selection)
    if len(needle) < MIN_MATCH_CHARS:
        return None
    async with db.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT doc_path, title, url, sections, strpos(normalized, %s) AS position FROM book_pages"
            " WHERE namespace = %s AND strpos(normalized, %s) > 0 ORDER BY doc_path LIMIT 1",
            (needle, namespace, needle),
        )
        row = await cur.fetchone()
    if row is None:
        return None
    offset = row["position"] - 1
    anchor, heading = "", row["title"]
    for start, section_anchor, section_heading in row["sections"]:
        if start > offset:
            break
        anchor, heading = section_anchor, section_heading or row["title"]
    url = f"{row['url']}#{anchor}" if anchor else row["url"]
    return VerifiedSelection(row["doc_path"], row["title"], url, heading, anchor)
