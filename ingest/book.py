"""`tutor ingest`: a Docusaurus docs folder → chunks → the book index."""

from __future__ import annotations

from pathlib import Path

from langchain_core.documents import Document

from core.index import BookIndex
from core.settings import Settings
from ingest.indexer import IngestSummary, ProgressCallback, sync_documents
from ingest.loader import LoadProblem, Page, iter_book_files, load_book
from ingest.pages import sync_pages
from ingest.splitter import Chunk, split_page


def chunk_document(chunk: Chunk) -> Document:
    """The indexed form of a chunk: its heading path, then its text.

    The heading path leads because a passage's headings say what it is about (both the dense and the BM25
    leg match better with them).
    """
    metadata = chunk.metadata()
    metadata["chunk_id"] = metadata.pop("id")
    return Document(page_content=f"{chunk.heading_path}\n\n{chunk.text}", metadata=metadata)


def book_chunks(root: Path, settings: Settings) -> tuple[list[Page], list[Chunk], list[LoadProblem]]:
    """The pages of the book at `root`, their chunks, and the problems met (raises BookError)."""
    pages, problems = load_book(root, settings.book_base_url, settings.book_docs_route)
    chunks = [
        chunk for page in pages for chunk in split_page(page, settings.chunk_size, settings.chunk_overlap)
    ]
    return pages, chunks, problems


async def ingest_book(
    index: BookIndex,
    root: Path,
    settings: Settings,
    *,
    recreate: bool = False,
    on_start: ProgressCallback | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestSummary:
    """Index the book at `root` incrementally; `on_start(n)` receives the number of chunks."""
    pages, chunks, problems = book_chunks(root, settings)
    if on_start:
        on_start(len(chunks))
    # Every file still on disk, readable or not: only sources that disappeared are deleted.
    present = {path.relative_to(root).as_posix() for path in iter_book_files(root)} if root.is_dir() else None
    summary = await sync_documents(
        index,
        [chunk_document(chunk) for chunk in chunks],
        present_sources=present,
        recreate=recreate,
        on_progress=on_progress,
    )
    await sync_pages(index, chunks, present)
    summary.pages = len(pages)
    summary.problems = [{"source": p.source, "message": p.message} for p in problems]
    return summary
