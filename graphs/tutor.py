"""Opening the tutor: services, the Postgres checkpointer and the compiled graph, for one process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph.state import CompiledStateGraph

from chains.retriever import BookRetriever
from chains.rewrite import load_glossary
from core.db import CHECKPOINTER_LOCK
from core.index import BookIndex
from core.providers import make_chat_model
from core.runtime import open_book_index
from core.settings import Settings
from graphs.context import TutorServices
from graphs.graph import build_graph


@dataclass
class Tutor:
    """A ready tutor: the compiled graph, its services and what must be closed after."""

    graph: CompiledStateGraph[Any, Any, Any, Any]
    services: TutorServices
    checkpointer: AsyncPostgresSaver


def make_services(settings: Settings, index: BookIndex) -> TutorServices:
    """The services the graph runs with, from the settings and an open index."""
    return TutorServices(
        settings=settings,
        db=index.db,
        retriever=BookRetriever(index, fusion=settings.hybrid_fusion, docs_route=settings.book_docs_route),
        embeddings=index.embeddings,
        chat_model=make_chat_model(settings),
        glossary=load_glossary(settings.glossary_path),
    )


async def open_checkpointer(index: BookIndex) -> AsyncPostgresSaver:
    """The LangGraph checkpointer on the project's pool (its tables are created once).

    Set-up runs under an advisory lock: two replicas running its CREATE INDEX CONCURRENTLY
    migrations at once deadlocked (tests/api/test_processes.py starts two together).
    """
    saver = AsyncPostgresSaver(index.db.pool)
    async with index.db.advisory_lock(CHECKPOINTER_LOCK):
        await saver.setup()
    return saver


@asynccontextmanager
async def open_tutor(settings: Settings) -> AsyncIterator[Tutor]:
    """The tutor with memory, over the configured stores; closes them on exit."""
    async with open_book_index(settings) as index:
        services = make_services(settings, index)
        checkpointer = await open_checkpointer(index)
        yield Tutor(build_graph(services, checkpointer), services, checkpointer)
