"""The selection route: answer from the highlighted text only — no search, no history, no passages."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.runnables import RunnableConfig

from chains.answer import selection_answer
from chains.citations import Source, best_quote
from chains.extractive import best_sentences
from chains.selection import verify_selection
from core.language import detect_language
from graphs.context import TutorServices
from graphs.state import TutorState


async def answer_selection(
    state: TutorState, config: RunnableConfig, *, services: TutorServices
) -> dict[str, Any]:
    """A follow-up without new text stays on the thread's last selection."""
    selection = state.get("selected_text") or state.get("pinned_selection")
    if not selection:
        return {
            "error": {"code": "no_selection", "message": "Highlight some text in the book first."},
            "answer": "",
        }
    message = state["message"]
    found = await verify_selection(services.db, services.namespace, selection)
    if services.chat_model is None:
        sentences = await asyncio.to_thread(best_sentences, message, selection, services.embeddings)
        text = " ".join(sentences)
    else:
        text = await selection_answer(services.chat_model, message, selection, config)
    sources: list[Source] = []
    if found:
        sources = [
            Source(
                id=f"{found.doc_path}#{found.anchor}",
                title=found.title,
                url=found.url,
                heading=found.heading,
                quote=best_quote(selection, message),
                score=1.0,
            )
        ]
        if services.chat_model is None:
            text = f"{text} [1]"
    return {
        "answer": text,
        "sources": sources,
        "verified_selection": found is not None,
        "pinned_selection": selection,
        "grounded": True,
        "language": detect_language(message),
    }
