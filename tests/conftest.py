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
from core.index import BookIndex, open_qdrant, qdrant_location
from core.providers import LOCAL_MODEL
from core.settings import Settings

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


async def open_index(settings: Settings, embeddings: LocalMiniLMEmbeddings, url: str) -> BookIndex:
    db = await Database.open(settings, url=url)
    return BookIndex(
        db=db,
        client=open_qdrant(settings),
        location=qdrant_location(settings),
        collection=settings.qdrant_collection,
        embeddings=embeddings,
        embedding_model=LOCAL_MODEL,
    )


async def close_index(index: BookIndex) -> None:
    index.client.close()
    await index.db.close()


@pytest.fixture
async def index(
    settings: Settings, embeddings: LocalMiniLMEmbeddings, pg_url: str
) -> AsyncIterator[BookIndex]:
    """An empty book index in this test's TUTOR_HOME, on each Postgres mode in turn."""
    book_index = await open_index(settings, embeddings, pg_url)
    yield book_index
    await close_index(book_index)


@pytest.fixture(scope="session")
async def book_index(
    tmp_path_factory: pytest.TempPathFactory, embedded_pg_url: str, embeddings: LocalMiniLMEmbeddings
) -> AsyncIterator[BookIndex]:
    """The bundled sample book, ingested once for the retrieval tests."""
    async with ingested_book(tmp_path_factory.mktemp("book"), embeddings, embedded_pg_url) as book:
        yield book


@asynccontextmanager
async def ingested_book(home: Path, embeddings: LocalMiniLMEmbeddings, url: str) -> AsyncIterator[BookIndex]:
    """The bundled sample book indexed into stores under `home` (Postgres at `url`), closed after."""
    from ingest.book import ingest_book

    settings = Settings(tutor_home=home / ".tutor", _env_file=None)  # type: ignore[call-arg]
    book = await open_index(settings, embeddings, url)
    try:
        await ingest_book(book, BOOK, settings)
        await book.require()
        yield book
    finally:
        await close_index(book)
