"""The ask route: standalone query → hybrid retrieval → grounded answer with citations."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from langchain_core.runnables import RunnableConfig

from chains.answer import grounded_answer
from chains.condense import condense
from chains.extractive import PASSAGES_USED, extractive_answer
from chains.rewrite import language_name
from core.retrieval import Passage
from graphs.answer_stream import stream_answer
from graphs.context import TutorServices
from graphs.state import TutorState

NOT_COVERED = {
    "en": "The book does not seem to cover this. Try rephrasing, or ask about a topic from the chapters.",
    "ur": (
        "ایسا لگتا ہے کہ کتاب میں اس موضوع کا ذکر نہیں ہے۔ "
        "سوال کو دوسرے الفاظ میں پوچھیں یا کسی باب کے موضوع کے بارے میں پوچھیں۔"
    ),
}


async def condense_query(
    state: TutorState, config: RunnableConfig, *, services: TutorServices
) -> dict[str, Any]:
    """Rewrite a follow-up into a standalone English query (no model call when nothing to resolve)."""
    result = await condense(
        services.quiet_model, state["message"], state.get("messages", []), state.get("summary", ""), config
    )
    return {"query": result.query, "language": result.language}


async def retrieve(state: TutorState, *, services: TutorServices) -> dict[str, Any]:
    """Search the book for the condensed query."""
    passages = await services.retriever.retrieve(
        state["query"], k=services.settings.search_k, page=state.get("page")
    )
    return {"passages": [asdict(p) for p in passages]}


async def answer(state: TutorState, config: RunnableConfig, *, services: TutorServices) -> dict[str, Any]:
    """Answer from the retrieved passages, or say the book does not cover the question.

    The book does not cover it when even the best passage is below the relevance floor.

    The floor judges the question, not each passage: a section that answers in other words than the question's
    can score under it while the best passage clears it (on the sample book, dropping such passages lost a
    gold section).
    """
    language = state.get("language") or "en"
    passages = [Passage(**p) for p in state.get("passages", [])]
    best = max((p.similarity or 0.0 for p in passages), default=0.0)
    supported = passages if best >= services.settings.relevance_floor else []
    if not supported:
        decline = NOT_COVERED.get(language, NOT_COVERED["en"])
        stream_answer(decline)
        return {"answer": decline, "sources": [], "grounded": False}
    if services.chat_model is None:
        known = await services.retriever.known_vectors(state["query"], supported[:PASSAGES_USED])
        text, sources = await asyncio.to_thread(
            extractive_answer, state["query"], supported, services.embeddings, known=known
        )
        stream_answer(text)  # no model streams it: its sentences go out as tokens all the same
    else:
        text, sources = await grounded_answer(
            services.chat_model,
            state["message"],
            supported,
            language_name=language_name(language),
            summary=state.get("summary", ""),
            config=config,
        )
    return {"answer": text, "sources": sources, "grounded": bool(sources), "language": language}
