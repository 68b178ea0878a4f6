"""Hosted providers, through the real LangChain clients against the fake OpenAI server."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.db import Database
from core.index import BookIndex, IndexMismatch, open_qdrant, qdrant_location
from core.providers import embedding_dimension, make_chat_model, make_embeddings
from core.settings import Settings
from ingest.book import ingest_book
from tests.ingest.test_indexer import write_book


@pytest.fixture
def hosted(settings: Settings, fake_openai, monkeypatch: pytest.MonkeyPatch) -> Settings:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    return settings.model_copy(
        update={"embeddings": "openai:text-embedding-3-small", "openai_base_url": fake_openai.base_url}
    )


async def test_hosted_embeddings_index_and_a_model_switch_is_refused(
    hosted: Settings, embedded_pg_url: str, tmp_path: Path
) -> None:
    embeddings, name = make_embeddings(hosted)
    assert name == "openai:text-embedding-3-small" and embedding_dimension(embeddings) == 64
    db = await Database.open(hosted, url=embedded_pg_url)
    client = open_qdrant(hosted)
    try:
        index = BookIndex(
            db=db,
            client=client,
            location=qdrant_location(hosted),
            collection="book",
            embeddings=embeddings,
            embedding_model=name,
        )
        summary = await ingest_book(index, write_book(tmp_path), hosted)
        assert summary.chunks == 9 and (await index.require()).dimension == 64
        local = BookIndex(
            db=db,
            client=client,
            location=qdrant_location(hosted),
            collection="book",
            embeddings=embeddings,
            embedding_model="sentence-transformers/all-MiniLM-L6-v2",
        )
        with pytest.raises(IndexMismatch, match="re-ingest with `tutor ingest PATH --recreate`"):
            await local.require()
    finally:
        client.close()
        await db.close()


def test_chat_model_is_optional_and_configured(settings: Settings, fake_openai, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    assert make_chat_model(settings) is None
    model = make_chat_model(
        settings.model_copy(
            update={
                "chat_model": "openai:gpt-4o-mini",
                "openai_base_url": fake_openai.base_url,
                "llm_timeout": 7.0,
                "llm_max_retries": 2,
            }
        )
    )
    assert model is not None
    assert (model.request_timeout, model.max_retries) == (7.0, 2)  # type: ignore[attr-defined]
