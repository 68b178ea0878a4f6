"""Shared fixtures: real Postgres (embedded and external), real Qdrant (local mode), the real model.

Postgres modes: `embedded` starts a pgserver under the session's temp folder; `external` uses
`TEST_DATABASE_URL` (CI: the machine's server). Each session works in its own schema of the external
database, dropped at the end, so runs never see each other's rows. In CI a missing
`TEST_DATABASE_URL` is an error, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from core.db import Database, embedded_postgres_url
from core.embeddings.local import LocalMiniLMEmbeddings
from core.index import BookIndex
from core.providers import LOCAL_MODEL
from core.settings import Settings
from core.vector_backends import VectorBackend
from core.vector_backends.pgvector import PgVectorBackend
from core.vector_backends.qdrant import QdrantBackend

pytest_plugins = ["tests.fakes.fixtures"]

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book" / "docs"
QUESTIONS = ROOT / "book" / "questions.jsonl"
SHARED = Path(os.environ.get("TUTOR_SHARED_DIR", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def embedded_pg_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return embedded_postgres_url(tmp_path_factory.mktemp("pg"))


@pytest.fixture(scope="session")
def external_pg_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TEST_DATABASE_URL is not set: CI must test against the external Postgres")
        pytest.skip("TEST_DATABASE_URL not set")
    schema = f"tutor_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield make_conninfo(url, options=f"-c search_path={schema}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session", params=["embedded", "external"])
def pg_url(request: pytest.FixtureRequest) -> str:
    """Every test using this runs once per Postgres mode."""
    url: str = request.getfixturevalue(f"{request.param}_pg_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, embedded_pg_url: str) -> Settings:
    """Settings for one test: its own TUTOR_HOME, the session's embedded Postgres."""
    return Settings(tutor_home=tmp_path / ".tutor", database_url=embedded_pg_url, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def embeddings(tmp_path_factory: pytest.TempPathFactory) -> LocalMiniLMEmbeddings:
    """The real local model, built once per session."""
    return LocalMiniLMEmbeddings(tmp_path_factory.mktemp("models"))


# (Postgres, vector backend) pairs the index tests run on. The external test Postgres has no pgvector
# extension, so pgvector runs on the embedded server (which ships it).
STORE_MODES = [("embedded", "qdrant"), ("external", "qdrant"), ("embedded", "pgvector")]
STORE_IDS = ["embedded", "external", "embedded-pgvector"]


async def open_index(
    settings: Settings, embeddings: LocalMiniLMEmbeddings, url: str, backend: str = "qdrant"
) -> BookIndex:
    db = await Database.open(settings, url=url)
    vectors: VectorBackend = (
        await PgVectorBackend.open(db) if backend == "pgvector" else QdrantBackend.open(settings)
    )
    return BookIndex(
        db=db,
        backend=vectors,
        collection=settings.qdrant_collection,
        embeddings=embeddings,
        embedding_model=LOCAL_MODEL,
    )


async def close_index(index: BookIndex) -> None:
    index.backend.close()
    await index.db.close()


@pytest.fixture(params=STORE_MODES, ids=STORE_IDS)
async def index(
    request: pytest.FixtureRequest, settings: Settings, embeddings: LocalMiniLMEmbeddings
) -> AsyncIterator[BookIndex]:
    """An empty book index in this test's TUTOR_HOME, on each (Postgres mode, vector backend) in turn.

    With pgvector its tables live in the session's embedded database, so each test gets a
    collection name of its own.
    """
    postgres, backend = request.param
    url: str = request.getfixturevalue(f"{postgres}_pg_url")
    if backend == "pgvector":
        settings = settings.model_copy(update={"qdrant_collection": f"t{uuid.uuid4().hex[:12]}"})
    book_index = await open_index(settings, embeddings, url, backend)
    yield book_index
    await close_index(book_index)


@pytest.fixture
def vector_store(index: BookIndex) -> str:
    """The vector backend of the test's `index` (qdrant or pgvector)."""
    return index.backend.kind


@pytest.fixture(scope="session")
async def book_qdrant(
    tmp_path_factory: pytest.TempPathFactory, embedded_pg_url: str, embeddings: LocalMiniLMEmbeddings
) -> AsyncIterator[BookIndex]:
    """The bundled sample book in Qdrant (local mode), ingested once per session."""
    async with ingested_book(tmp_path_factory.mktemp("book"), embeddings, embedded_pg_url, "qdrant") as book:
        yield book


@pytest.fixture(scope="session")
async def book_pgvector(
    tmp_path_factory: pytest.TempPathFactory, embedded_pg_url: str, embeddings: LocalMiniLMEmbeddings
) -> AsyncIterator[BookIndex]:
    """The bundled sample book in pgvector (embedded Postgres), ingested once per session."""
    async with ingested_book(
        tmp_path_factory.mktemp("book"), embeddings, embedded_pg_url, "pgvector"
    ) as book:
        yield book


@pytest.fixture(scope="session", params=["qdrant", "pgvector"])
def book_index(request: pytest.FixtureRequest) -> BookIndex:
    """The ingested sample book on each vector backend in turn (the retrieval tests)."""
    book: BookIndex = request.getfixturevalue(f"book_{request.param}")
    return book


@asynccontextmanager
async def ingested_book(
    home: Path, embeddings: LocalMiniLMEmbeddings, url: str, backend: str = "qdrant"
) -> AsyncIterator[BookIndex]:
    """The bundled sample book indexed into stores under `home` (Postgres at `url`), closed after.

    With pgvector the book's tables are named after `home` (several such books share a database).
    """
    from ingest.book import ingest_book

    settings = Settings(tutor_home=home / ".tutor", _env_file=None)  # type: ignore[call-arg]
    if backend == "pgvector":
        settings = settings.model_copy(update={"qdrant_collection": f"book_{home.name}"})
    book = await open_index(settings, embeddings, url, backend)
    try:
        await ingest_book(book, BOOK, settings)
        await book.require()
        yield book
    finally:
        await close_index(book)
