"""Incremental, idempotent indexing against real Postgres (both modes) on both vector backends.

Qdrant in local mode, and pgvector tables in the embedded Postgres (`index` runs each test on every
(Postgres, backend) pair of `tests.conftest.STORE_MODES`).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from qdrant_client import models

from core.db import Database
from core.embeddings.local import LocalMiniLMEmbeddings
from core.index import BookIndex, IndexMismatch, VectorStoreLocked, open_qdrant
from core.retrieval import search
from core.settings import Settings
from core.vector_backends.pgvector import PgVectorBackend, VectorExtensionMissing
from core.vector_backends.pgvector_store import collection_tables as pgvector_tables
from core.vectors import CHUNK_KEY, chunk_sentences
from ingest.book import ingest_book
from ingest.record_manager import PostgresRecordManager

PAGE = """---
title: {title}
---

Intro paragraph of {title}, about {topic}.

## First section

The first section of {title} explains {topic} in a few sentences. It is long enough to be a chunk.

## Second section

The second section of {title} gives an example of {topic} with numbers 1, 2 and 3.
"""


def write_book(root: Path) -> Path:
    docs = root / "docs"
    (docs / "01-basics").mkdir(parents=True)
    (docs / "01-basics" / "01-alpha.md").write_text(PAGE.format(title="Alpha", topic="gear trains"))
    (docs / "01-basics" / "02-beta.md").write_text(PAGE.format(title="Beta", topic="servo motors"))
    (docs / "gamma.md").write_text(PAGE.format(title="Gamma", topic="lidar scanners"))
    return docs


async def qdrant_count(index: BookIndex) -> int:
    """Chunks the vector store holds (either backend)."""
    return index.backend.count(index.collection)


async def assert_sentences_match_chunks(index: BookIndex) -> int:
    """Every chunk has one stored sentence vector per prose sentence (ordinals 0..n-1), none left over."""
    groups = await PostgresRecordManager(index.db.pool, index.namespace).keys_by_group()
    keys = [key for group in groups.values() for key in group]
    chunks = index.backend.fetch(index.collection, keys, with_vectors=False)
    assert len(chunks) == len(keys)
    expected = {chunk.id: len(chunk_sentences(chunk.content, chunk.metadata)) for chunk in chunks.values()}
    # Ask for two more ordinals than each chunk has: none of them may be stored.
    stored = index.stored_sentence_vectors({chunk: n + 2 for chunk, n in expected.items()})
    assert {chunk: sorted(by_ordinal) for chunk, by_ordinal in stored.items()} == {
        chunk: list(range(n)) for chunk, n in expected.items() if n
    }
    total = sum(len(batch) for batch in index.backend.sentence_sample(index.collection, 1_000_000))
    assert total == sum(expected.values())  # no sentence of a deleted or edited chunk remains
    return total


def drop_vectors(index: BookIndex, *, sentences_only: bool = False) -> None:
    """Wipe the collection's vectors (or only its sentence vectors) behind the index's back."""
    if index.backend.kind == "qdrant":
        client = index.backend.client  # type: ignore[attr-defined]
        client.delete_collection(index.sentences if sentences_only else index.collection)
        return
    chunks, _, sentences = pgvector_tables(index.collection)
    with psycopg.connect(index.db.url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {sentences}" if sentences_only else f"DROP TABLE {chunks} CASCADE")


async def test_reingest_edit_delete_recreate(index: BookIndex, settings: Settings, tmp_path: Path) -> None:
    docs = write_book(tmp_path)
    embedded_before = index.embeddings.texts_embedded  # type: ignore[attr-defined]

    first = await ingest_book(index, docs, settings)
    assert (first.pages, first.added, first.skipped, first.deleted) == (3, 3, 0, 0)
    assert first.chunks == first.embedded == 9  # intro + 2 sections per page
    assert await qdrant_count(index) == 9
    sentence_count = await assert_sentences_match_chunks(index)
    assert sentence_count >= 9  # every chunk of this book has prose
    # Chunks and their sentences went through the model, nothing else.
    assert index.embeddings.texts_embedded == embedded_before + 9 + sentence_count  # type: ignore[attr-defined]

    # Unchanged book: nothing embedded, nothing written.
    counted = index.embeddings.texts_embedded  # type: ignore[attr-defined]
    again = await ingest_book(index, docs, settings)
    assert (again.added, again.updated, again.skipped, again.deleted, again.embedded) == (0, 0, 3, 0, 0)
    assert index.embeddings.texts_embedded == counted  # type: ignore[attr-defined]
    assert again.chunks == 9

    # One sentence edited in one section: exactly that chunk (and its sentences) is embedded again.
    beta = docs / "01-basics" / "02-beta.md"
    beta.write_text(beta.read_text().replace("with numbers 1, 2 and 3", "with numbers 4, 5 and 6"))
    edited = await ingest_book(index, docs, settings)
    assert (edited.added, edited.updated, edited.skipped, edited.deleted) == (0, 1, 2, 0)
    assert edited.embedded == 1
    edited_chunk = next(p for p in search(index, "servo motors numbers 4, 5 and 6", k=1, mode="sparse"))
    sentences = chunk_sentences(edited_chunk.text)
    assert index.embeddings.texts_embedded == counted + 1 + len(sentences)  # type: ignore[attr-defined]
    assert await qdrant_count(index) == 9
    assert await assert_sentences_match_chunks(index) == sentence_count  # old sentences replaced, not added
    hits = search(index, "servo motors example numbers", k=9, mode="sparse")
    on_beta = [p for p in hits if p.title == "Beta"]
    assert any("4, 5 and 6" in p.text for p in on_beta)
    assert not any("1, 2 and 3" in p.text for p in on_beta)

    # A deleted file loses its chunks, in Qdrant and in the records.
    (docs / "gamma.md").unlink()
    deleted = await ingest_book(index, docs, settings)
    assert (deleted.deleted, deleted.skipped, deleted.chunks, deleted.embedded) == (1, 2, 6, 0)
    assert await qdrant_count(index) == 6
    assert not [p for p in search(index, "lidar scanners", k=6, mode="sparse") if p.title == "Gamma"]
    assert await assert_sentences_match_chunks(index) < sentence_count

    # --recreate rebuilds everything.
    rebuilt = await ingest_book(index, docs, settings, recreate=True)
    assert (rebuilt.added, rebuilt.embedded, rebuilt.chunks) == (2, 6, 6)
    assert await qdrant_count(index) == 6
    await assert_sentences_match_chunks(index)
    assert index.embeddings.texts_embedded > embedded_before  # type: ignore[attr-defined]


async def test_broken_file_keeps_its_chunks_and_is_reported(
    index: BookIndex, settings: Settings, tmp_path: Path
) -> None:
    docs = write_book(tmp_path)
    await ingest_book(index, docs, settings)
    (docs / "gamma.md").write_bytes(b"\xff\xfe caf\xe9 latin-1 bytes")
    (docs / "broken.md").write_text("---\ntitle: [unclosed\n---\n\nText.\n")
    summary = await ingest_book(index, docs, settings)
    sources = {problem["source"] for problem in summary.problems}
    assert sources == {"gamma.md", "broken.md"}
    assert (summary.pages, summary.skipped, summary.deleted, summary.chunks) == (2, 3, 0, 9)


async def test_lost_vectors_are_rebuilt_not_trusted(
    index: BookIndex, settings: Settings, tmp_path: Path
) -> None:
    docs = write_book(tmp_path)
    await ingest_book(index, docs, settings)
    drop_vectors(index)  # e.g. a wiped Qdrant folder or dropped table; records remain
    summary = await ingest_book(index, docs, settings)
    assert summary.embedded == 9 and await qdrant_count(index) == 9


async def test_other_embedding_model_is_a_clear_error(
    index: BookIndex, settings: Settings, tmp_path: Path
) -> None:
    docs = write_book(tmp_path)
    await ingest_book(index, docs, settings)
    index.embedding_model = "openai:text-embedding-3-small"
    with pytest.raises(IndexMismatch, match="--recreate"):
        await ingest_book(index, docs, settings)
    with pytest.raises(IndexMismatch, match="--recreate"):
        await index.require()


async def test_collection_without_sentence_vectors_searches_and_asks_for_recreate(
    index: BookIndex, settings: Settings, tmp_path: Path
) -> None:
    docs = write_book(tmp_path)
    await ingest_book(index, docs, settings)
    drop_vectors(index, sentences_only=True)  # what an older version built: chunks only
    index.info = None
    await index.require()  # still searchable, on the chunk legs
    assert not index.has_sentences
    assert search(index, "What do servo motors do?", k=3, mode="hybrid")
    # Ingesting into it would index new chunks with sentences and old ones without: refused.
    with pytest.raises(IndexMismatch, match=r"without sentence vectors.*--recreate"):
        await ingest_book(index, docs, settings)
    rebuilt = await ingest_book(index, docs, settings, recreate=True)
    assert rebuilt.embedded == 9 and index.has_sentences
    await assert_sentences_match_chunks(index)


async def test_sentence_vectors_can_be_left_out(
    index: BookIndex, settings: Settings, embeddings: LocalMiniLMEmbeddings, tmp_path: Path
) -> None:
    plain = index.sibling(f"{index.collection}_plain", sentence_vectors=False)
    before = embeddings.texts_embedded
    summary = await ingest_book(plain, write_book(tmp_path), settings)
    assert summary.embedded == 9 and embeddings.texts_embedded == before + 9  # chunks only
    assert not plain.backend.has_sentences(plain.collection)
    passages = search(plain, "What do servo motors do?", k=3, mode="hybrid")
    assert passages[0].title == "Beta"


async def test_sentences_of_a_vanished_chunk_are_ignored(
    index: BookIndex, settings: Settings, tmp_path: Path
) -> None:
    """An ingest interrupted between deleting a chunk and its sentences leaves orphans behind (Qdrant).

    pgvector cannot have them: a sentence row references its chunk (ON DELETE CASCADE).
    """
    await ingest_book(index, write_book(tmp_path), settings)
    query = "an orphan sentence that matches this question exactly"
    if index.backend.kind == "pgvector":
        sentences = pgvector_tables(index.collection)[2]
        with (
            psycopg.connect(index.db.url, autocommit=True) as conn,
            pytest.raises(psycopg.errors.ForeignKeyViolation),
        ):
            conn.execute(
                f"INSERT INTO {sentences} VALUES (%s, 0, %s::vector)",
                (str(uuid.uuid4()), str(index.embeddings.embed_query(query))),
            )
        return
    index.backend.client.upsert(  # type: ignore[attr-defined]
        index.sentences,
        points=[
            models.PointStruct(
                id=str(uuid.uuid4()),
                vector=index.embeddings.embed_query(query),
                payload={CHUNK_KEY: str(uuid.uuid4())},
            )
        ],
    )
    passages = search(index, query, k=9, mode="hybrid")
    assert len(passages) == 9 and all(p.title in {"Alpha", "Beta", "Gamma"} for p in passages)


async def test_records_are_namespaced_by_store(index: BookIndex, settings: Settings, tmp_path: Path) -> None:
    await ingest_book(index, write_book(tmp_path), settings)
    other = PostgresRecordManager(index.db.pool, "local:/somewhere/else/book")
    assert await other.keys_by_group() == {}


def test_embedded_qdrant_held_by_another_client_is_a_clear_error(settings: Settings) -> None:
    first = open_qdrant(settings)
    try:
        with pytest.raises(VectorStoreLocked, match="QDRANT_URL"):
            open_qdrant(settings)
    finally:
        first.close()


async def test_pgvector_on_a_postgres_without_the_extension_names_the_fix(
    settings: Settings, external_pg_url: str
) -> None:
    """The external test Postgres has no pgvector: VECTOR_STORE=pgvector says what to do."""
    db = await Database.open(settings, url=external_pg_url)
    try:
        with pytest.raises(VectorExtensionMissing, match=r"pgvector.*VECTOR_STORE=qdrant") as error:
            await PgVectorBackend.open(db)
        assert "DATABASE_URL" in str(error.value)
    finally:
        await db.close()
