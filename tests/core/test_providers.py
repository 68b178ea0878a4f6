"""Hosted providers, through the real LangChain clients against the fake OpenAI and Gemini servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.db import Database
from core.index import BookIndex, IndexMismatch
from core.providers import embedding_dimension, make_chat_model, make_embeddings
from core.retrieval import search
from core.settings import Settings
from core.vector_backends.qdrant import QdrantBackend
from ingest.book import ingest_book
from tests.fakes import Error, Text
from tests.ingest.test_indexer import write_book

HOSTED_EMBEDDINGS = {  # provider: (EMBEDDINGS, its fake's fixture, the key's variable, the base URL setting)
    "openai": ("openai:text-embedding-3-small", "fake_openai", "OPENAI_API_KEY", "openai_base_url"),
    "gemini": (
        "google_genai:models/gemini-embedding-001",
        "fake_gemini",
        "GOOGLE_API_KEY",
        "google_base_url",
    ),
}


@pytest.fixture(params=list(HOSTED_EMBEDDINGS))
def hosted(request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose EMBEDDINGS is a hosted model served by the matching fake (`settings.fake`)."""
    model, fixture, key, base_url = HOSTED_EMBEDDINGS[request.param]
    fake = request.getfixturevalue(fixture)
    monkeypatch.setenv(key, "test")
    request.node.fake = fake
    return settings.model_copy(update={"embeddings": model, base_url: fake.base_url, "llm_max_retries": 1})


async def test_hosted_embeddings_index_search_and_a_model_switch_is_refused(
    hosted: Settings, embedded_pg_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fake: Any = request.node.fake
    embeddings, name = make_embeddings(hosted)
    assert name == hosted.embeddings and embedding_dimension(embeddings) == 64
    fake.script_embeddings(Error(503, "busy"))  # the first batch of the ingest fails once: retried
    db = await Database.open(hosted, url=embedded_pg_url)
    backend = QdrantBackend.open(hosted)
    try:
        index = BookIndex(
            db=db,
            backend=backend,
            collection="book",
            embeddings=embeddings,
            embedding_model=name,
        )
        summary = await ingest_book(index, write_book(tmp_path), hosted)
        assert summary.chunks == 9 and (await index.require()).dimension == 64
        assert 503 in [r.status for r in fake.embedding_requests]
        passages = search(index, "servo motors", k=3)
        assert passages and passages[0].title == "Beta"
        local = BookIndex(
            db=db,
            backend=backend,
            collection="book",
            embeddings=embeddings,
            embedding_model="sentence-transformers/all-MiniLM-L6-v2",
        )
        with pytest.raises(IndexMismatch, match="re-ingest with `tutor ingest PATH --recreate`"):
            await local.require()
    finally:
        backend.close()
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


def test_gemini_chat_model_is_configured_alike(settings: Settings, fake_gemini, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GOOGLE_API_KEY", "test")
    update = {
        "chat_model": "google_genai:gemini-2.5-flash",
        "google_base_url": fake_gemini.base_url,
        "llm_timeout": 7.0,
        "llm_max_retries": 1,
    }
    model: Any = make_chat_model(settings.model_copy(update=update))
    # google-genai counts attempts (the first call included): one retry is two attempts.
    assert (model.timeout, model.max_retries, model.base_url) == (7.0, 2, fake_gemini.base_url)
    fake_gemini.script(Error(500), Text("second time lucky"))
    assert model.invoke("hi").content == "second time lucky"
    assert [r.status for r in fake_gemini.chat_requests] == [500, 200]
