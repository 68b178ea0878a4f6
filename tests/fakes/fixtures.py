"""Pytest fixtures and builders for tests that talk to `FakeOpenAI` / `FakeGemini` through the real clients.

Enable with `pytest_plugins = ["tests.fakes.fixtures"]` in the root conftest.

Each test gets its own server (start ~2 ms, stop ~10 ms): a fresh port means langchain-openai's
process-wide httpx client cache (keyed by base_url and timeout) never hands a test a pooled
connection from an earlier test, and a request left hanging by one test can't eat the next test's
script.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_openai import OpenAIEmbeddings

from core.providers import make_chat_model as make_chat_model_from_settings
from core.providers import make_embeddings as make_embeddings_from_settings
from core.settings import Settings
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.openai_server import FakeOpenAI

FAKE_API_KEY = "test"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running fake for this test; fails the test if the fake saw an unscripted request or crashed.

    Tests that provoke such problems on purpose clear `fake_openai.problems` before returning.
    """
    with FakeOpenAI() as fake:
        yield fake
        problems = list(fake.problems)
    if problems:
        pytest.fail("FakeOpenAI problems:\n" + "\n---\n".join(problems), pytrace=False)


def make_chat_model(
    fake: FakeOpenAI,
    model: str = "gpt-4o-mini",
    *,
    timeout: float = 10.0,
    max_retries: int = 0,
    stall_timeout: float = 120.0,
    **kwargs: Any,
) -> BaseChatModel:
    """The real LangChain OpenAI chat model, built the way the product builds it (`make_chat_model`:
    `OPENAI_BASE_URL`, the blocked-answer check, the stall guard), pointed at the fake.

    Defaults differ from the SDK's on purpose: `max_retries=0` so each scripted reply maps to one
    call (pass 2 to test retries) and a 10 s timeout instead of 600 s so a broken test fails fast.
    """
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        chat_model=f"openai:{model}",
        openai_base_url=fake.base_url,
        llm_timeout=timeout,
        llm_max_retries=max_retries,
        llm_stall_timeout=stall_timeout,
    )
    chat_model = make_chat_model_from_settings(settings, api_key=FAKE_API_KEY, **kwargs)
    assert chat_model is not None
    return chat_model


def make_embeddings(
    fake: FakeOpenAI,
    model: str = "text-embedding-3-small",
    *,
    max_retries: int = 0,
    **kwargs: Any,
) -> OpenAIEmbeddings:
    """The real `OpenAIEmbeddings` pointed at the fake (raw text input, no tiktoken download)."""
    return OpenAIEmbeddings(
        model=model,
        base_url=fake.base_url,
        api_key=FAKE_API_KEY,  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
        max_retries=max_retries,
        **kwargs,
    )


@pytest.fixture
def fake_gemini() -> Iterator[FakeGemini]:
    """A running fake Gemini Developer API for this test; problems fail the test as for `fake_openai`."""
    with FakeGemini() as fake:
        yield fake
        problems = list(fake.problems)
    if problems:
        pytest.fail("FakeGemini problems:\n" + "\n---\n".join(problems), pytrace=False)


def make_gemini_chat_model(
    fake: FakeGemini,
    model: str = "gemini-2.5-flash",
    *,
    timeout: float = 10.0,
    max_retries: int = 0,
    **kwargs: Any,
) -> BaseChatModel:
    """The real `ChatGoogleGenerativeAI`, built the way the product builds it (`make_chat_model`:
    `GOOGLE_BASE_URL`, the safety-block check, retries counted like OpenAI's), pointed at the fake.

    Note google-genai's backoff: each retry waits 1-2 s, so tests script at most one or two.
    """
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        chat_model=f"google_genai:{model}",
        google_base_url=fake.base_url,
        llm_timeout=timeout,
        llm_max_retries=max_retries,
    )
    chat_model = make_chat_model_from_settings(settings, api_key=FAKE_API_KEY, **kwargs)
    assert chat_model is not None
    return chat_model


def make_gemini_embeddings(
    fake: FakeGemini,
    model: str = "models/gemini-embedding-001",
    *,
    max_retries: int = 0,
    timeout: float = 10.0,
) -> Embeddings:
    """The real `GoogleGenerativeAIEmbeddings` as `make_embeddings` builds it, pointed at the fake."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        embeddings=f"google_genai:{model}",
        google_base_url=fake.base_url,
        llm_timeout=timeout,
        llm_max_retries=max_retries,
    )
    return make_embeddings_from_settings(settings, api_key=FAKE_API_KEY)[0]


@dataclass
class ChatProvider:
    """One provider's fake and the real LangChain client for it: `model(max_retries=2)`…"""

    name: str
    fake: FakeOpenAI
    build: Callable[..., BaseChatModel]

    def model(self, **options: Any) -> BaseChatModel:
        return self.build(self.fake, **options)


@pytest.fixture(params=["openai", "gemini"])
def chat_provider(request: pytest.FixtureRequest) -> ChatProvider:
    """Each model-facing test runs once per provider: OpenAI-compatible, then Gemini."""
    if request.param == "openai":
        return ChatProvider("openai", request.getfixturevalue("fake_openai"), make_chat_model)
    return ChatProvider("gemini", request.getfixturevalue("fake_gemini"), make_gemini_chat_model)
