"""Pytest fixtures and builders for tests that talk to `FakeOpenAI` through the real clients.

Enable with `pytest_plugins = ["tests.fakes.fixtures"]` in the root conftest.

Each test gets its own server (start ~2 ms, stop ~10 ms): a fresh port means langchain-openai's
process-wide httpx client cache (keyed by base_url and timeout) never hands a test a pooled
connection from an earlier test, and a request left hanging by one test can't eat the next test's
script.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from langchain_openai import OpenAIEmbeddings

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
    **kwargs: Any,
) -> BaseChatModel:
    """The real LangChain OpenAI chat model, pointed at the fake.

    Defaults differ from the SDK's on purpose: `max_retries=0` so each scripted reply maps to one
    call (pass 2 to test retries) and a 10 s timeout instead of 600 s so a broken test fails fast.
    """
    return init_chat_model(
        f"openai:{model}",
        base_url=fake.base_url,
        api_key=FAKE_API_KEY,
        timeout=timeout,
        max_retries=max_retries,
        **kwargs,
    )


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
