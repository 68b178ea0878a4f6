"""A tutor graph over the ingested sample book, with a real Postgres checkpointer."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from chains.retriever import BookRetriever
from chains.rewrite import load_glossary
from core.index import BookIndex
from core.settings import Settings
from graphs.context import TutorServices, run_config
from graphs.graph import build_graph
from tests.conftest import ROOT
from tests.fakes import CapturedRequest, Json, Reply, Text

Tutor = tuple[Any, TutorServices]


@pytest.fixture
def book_index(book_pgvector: BookIndex) -> BookIndex:
    """The graph tests run on the default backend only (retrieval itself is tested on both)."""
    return book_pgvector


@pytest.fixture
def make_tutor(book_index: BookIndex, tmp_path: Path) -> Callable[..., Awaitable[Tutor]]:
    async def make(chat_model: BaseChatModel | None = None, **settings: Any) -> Tutor:
        config = Settings(_env_file=None, tutor_home=tmp_path / ".tutor", **settings)  # type: ignore[call-arg]
        services = TutorServices(
            settings=config,
            db=book_index.db,
            retriever=BookRetriever(book_index),
            embeddings=book_index.embeddings,
            chat_model=chat_model,
            glossary=load_glossary(ROOT / "book" / "glossary.txt"),
        )
        saver = AsyncPostgresSaver(book_index.db.pool)  # type: ignore[arg-type]
        await saver.setup()
        return build_graph(services, saver), services

    return make


async def turn(
    graph: Any, thread: str | None = None, *, user: str | None = None, profile: Any = None, **inputs: Any
) -> dict[str, Any]:
    """One turn on `thread` (a new one when None)."""
    config = run_config(thread or str(uuid.uuid4()), user, profile)
    result: dict[str, Any] = await graph.ainvoke(inputs, config)
    return result


def tutor_responder(
    *,
    route: str = "ask",
    answer: str = "Topics carry streams of messages [1].",
    condense: dict[str, str] | None = None,
    selection_answer: str = "From the selection: yes.",
    selection_supported: bool = True,
    rewrite: str | None = None,
    answer_token_delay: float = 0.0,
) -> Callable[[CapturedRequest], Reply | None]:
    """Scripted replies for each of the tutor's model calls, told apart by their system prompts."""

    def respond(request: CapturedRequest) -> Reply | None:
        system = request.system_prompt
        if "You route a reader" in system:
            return Json({"route": route})
        if "standalone search query" in system:
            return Json(condense or {"query": request.last_user_text, "language": "en"})
        if "patient tutor for a textbook" in system:
            return Text(answer, token_delay=answer_token_delay)
        if "highlighted a passage" in system:  # a structured reply: does the selection answer?
            return Json({"supported": selection_supported, "answer": selection_answer})
        if "short title" in system:
            return Text("ROS 2 topics")
        if "running summary" in system:
            return Text("The reader asked about ROS 2.")
        if rewrite is not None:
            return Text(rewrite)
        return None

    return respond


def requests_like(fake: Any, marker: str) -> list[CapturedRequest]:
    return [r for r in fake.chat_requests if marker in r.system_prompt]
