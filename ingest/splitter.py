"""Heading-aware chunking of a loaded page.

A chunk never crosses a heading, so every chunk can link to the exact section it came from
(``url#anchor``) and carry its breadcrumb (``heading_path``). Inside a section, Markdown blocks are
packed greedily; code fences and tables are kept whole because half a code sample or a table without
its header row is worse than a chunk that is a little too long.

Chunk ids depend only on the page, the section anchor and the chunk's ordinal in that section, so
editing a paragraph updates the same vector-store record instead of creating a new one; the
``content_hash`` tells the indexer whether the text actually changed.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Literal

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.anchors import Heading, HeadingSlugger, code_fence_spans, iter_headings, parse_heading
from ingest.loader import Page

# Fixed forever: changing it changes every chunk id and forces a full re-index.
CHUNK_NAMESPACE = uuid.UUID("0d4c5a3e-6a1f-5b7e-9c2d-5f1e8b7a4c30")
HEADING_PATH_SEPARATOR = " › "

_TABLE_DELIMITER_ROW = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
BlockKind = Literal["prose", "code", "table"]


@dataclass(frozen=True)
class Chunk:
    """One piece of a page: its text, heading path, anchor and position."""

    id: str
    text: str
    source: str
    doc_path: str
    title: str
    category: str | None
    heading: str
    heading_path: str
    anchor: str
    url: str
    order: int
    content_hash: str

    def metadata(self) -> dict[str, Any]:
        """Every field but ``text``: plain JSON values for the vector-store payload."""
        data = asdict(self)
        del data["text"]
        return data


@dataclass(frozen=True)
class _Block:
    text: str
    kind: BlockKind


@dataclass(frozen=True)
class _Section:
    heading: str
    path: tuple[str, ...]
    anchor: str
    lines: list[str]


def split_page(page: Page, chunk_size: int = 1000, chunk_overlap: int = 150) -> list[Chunk]:
    """Chunks of ``page`` in reading order."""
    if chunk_size <= 0 or not 0 <= chunk_overlap < chunk_size:
        raise ValueError(f"need 0 <= chunk_overlap < chunk_size, got {chunk_overlap} and {chunk_size}")
    prose_splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    chunks: list[Chunk] = []
    per_anchor: Counter[str] = Counter()
    for section in _sections(page):
        blocks = _expand(_blocks(section.lines), prose_splitter, chunk_size)
        for text in _pack(blocks, chunk_size, chunk_overlap):
            ordinal = per_anchor[section.anchor]  # per anchor, not per section: explicit ids may repeat
            per_anchor[section.anchor] += 1
            chunks.append(
                Chunk(
                    id=str(uuid.uuid5(CHUNK_NAMESPACE, f"{page.source}#{section.anchor}#{ordinal}")),
                    text=text,
                    source=page.source,
                    doc_path=page.doc_path,
                    title=page.title,
                    category=page.category,
                    heading=section.heading,
                    heading_path=HEADING_PATH_SEPARATOR.join(section.path),
                    anchor=section.anchor,
                    url=f"{page.url}#{section.anchor}" if section.anchor else page.url,
                    order=len(chunks),
                    content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                )
            )
    return chunks


def _sections(page: Page) -> list[_Section]:
    """The text before the first heading, then one section per heading (h1 in the body included)."""
    lines = page.body.split("\n")
    slugger = HeadingSlugger()
    title_heading = parse_heading(page.title_heading) if page.title_heading else None
    if title_heading is not None:
        slugger.anchor(title_heading)  # Docusaurus slugged the h1 the loader removed
    root = ((page.category,) if page.category else ()) + (page.title,)
    headings = list(iter_headings(lines))
    sections = [_Section(page.title, root, "", lines[: headings[0][0] if headings else len(lines)])]
    stack: list[Heading] = []
    for position, (index, heading) in enumerate(headings):
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
        end = headings[position + 1][0] if position + 1 < len(headings) else len(lines)
        path = root + tuple(h.plain_text for h in stack)
        sections.append(_Section(heading.plain_text, path, slugger.anchor(heading), lines[index + 1 : end]))
    return sections


def _blocks(lines: list[str]) -> list[_Block]:
    """Blank-line separated blocks; a code fence is one block even with blank lines inside."""
    fences = dict(code_fence_spans(lines))
    blocks: list[_Block] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            text = "\n".join(pending).strip("\n")
            is_table = any(_TABLE_DELIMITER_ROW.match(line) and "|" in line for line in pending[1:])
            blocks.append(_Block(text, "table" if is_table else "prose"))
            pending.clear()

    index = 0
    while index < len(lines):
        if index in fences:
            flush()
            blocks.append(_Block("\n".join(lines[index : fences[index]]), "code"))
            index = fences[index]
            continue
        if lines[index].strip():
            pending.append(lines[index])
        else:
            flush()
        index += 1
    flush()
    return blocks


def _expand(blocks: list[_Block], splitter: RecursiveCharacterTextSplitter, size: int) -> list[_Block]:
    """Cut oversized prose with the recursive splitter and oversized tables into row groups."""
    result: list[_Block] = []
    for block in blocks:
        if len(block.text) <= size or block.kind == "code":
            result.append(block)
        elif block.kind == "table":
            result.extend(_Block(text, "table") for text in _table_parts(block.text, size))
        else:
            result.extend(_Block(text, "prose") for text in splitter.split_text(block.text))
    return result


def _table_parts(table: str, size: int) -> list[str]:
    """Row groups of a long table, each repeating the header so it still reads as a table."""
    lines = table.split("\n")
    delimiter = next(i for i, line in enumerate(lines) if i > 0 and _TABLE_DELIMITER_ROW.match(line))
    header, rows = lines[: delimiter + 1], lines[delimiter + 1 :]
    parts: list[list[str]] = []
    for row in rows:
        if parts and len("\n".join([*header, *parts[-1], row])) <= size:
            parts[-1].append(row)
        else:
            parts.append([row])
    return ["\n".join([*header, *part]) for part in parts] or [table]


def _pack(blocks: list[_Block], size: int, overlap: int) -> list[str]:
    """Greedy packing; each new chunk starts with the previous chunk's trailing prose (≤ overlap)."""
    chunks: list[list[_Block]] = []
    current: list[_Block] = []
    for block in blocks:
        if current and _length([*current, block]) > size:
            chunks.append(current)
            current = _overlap(current, overlap)
            if _length([*current, block]) > size:
                current = []
        current.append(block)
    if current:
        chunks.append(current)
    return ["\n\n".join(block.text for block in chunk) for chunk in chunks]


def _overlap(blocks: list[_Block], limit: int) -> list[_Block]:
    taken: list[_Block] = []
    for block in reversed(blocks):
        if block.kind != "prose" or _length([block, *taken]) > limit:
            break
        taken.insert(0, block)
    return taken


def _length(blocks: list[_Block]) -> int:
    return sum(len(block.text) for block in blocks) + 2 * max(len(blocks) - 1, 0)
