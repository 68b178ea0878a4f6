"""The selection route: answer from the highlighted text only — no search, no history, no passages.

The one thing this route must never do is tell the reader the selection says something it does not.
So it first decides whether the selection supports the question — with a chat model, the `supported`
field of its structured reply; without one, the score of the selection's best sentence against
`SELECTION_SUPPORT_FLOOR` — and when it does not, it says so (`grounded: false`, no sources) and
suggests a normal question. It never falls back to the book or the history.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.runnables import RunnableConfig

from chains.answer import selection_answer
from chains.citations import Source, best_quote
from chains.extractive import read_selection
from chains.selection import VerifiedSelection, verify_selection
from core.language import detect_language
from graphs.answer_stream import stream_answer
from graphs.context import TutorServices
from graphs.state import TutorState

NOT_IN_SELECTION = {
    "en": (
        "The selected text does not cover this, so I can't answer it from the selection. "
        "Ask it as a normal question (without a selection) to search the whole book."
    ),
    "ur": (
        "منتخب متن میں اس سوال کا جواب نہیں ہے، اس لیے میں انتخاب سے اس کا جواب نہیں دے سکتا۔ "
        "پوری کتاب میں تلاش کے لیے یہ سوال انتخاب کے بغیر عام سوال کے طور پر پوچھیں۔"
    ),
}


async def answer_selection(
    state: TutorState, config: RunnableConfig, *, services: TutorServices
) -> dict[str, Any]:
    """Answer from the highlighted text alone, or decline when it does not say.

    A follow-up without new text stays on the thread's last selection.
    """
    selection = state.get("selected_text") or state.get("pinned_selection")
    if not selection:
        return {
            "error": {"code": "no_selection", "message": "Highlight some text in the book first."},
            "answer": "",
        }
    message = state["message"]
    language = detect_language(message)
    found = await verify_selection(services.db, services.namespace, selection)
    kept = {"verified_selection": found is not None, "pinned_selection": selection, "language": language}

    text, quote = "", ""  # empty text: the selection does not support the question
    if services.quiet_model is None:
        reading = await asyncio.to_thread(read_selection, message, selection, services.embeddings)
        if reading.support >= services.settings.selection_support_floor:
            text, quote = " ".join(reading.sentences), reading.quote
    else:
        reply = await selection_answer(services.quiet_model, message, selection, config)
        if reply is not None and reply.supported and reply.answer.strip():
            text = reply.answer.strip()
            quote = best_quote(selection, text)

    if not text:
        decline = NOT_IN_SELECTION.get(language, NOT_IN_SELECTION["en"])
        stream_answer(decline)
        return {"answer": decline, "sources": [], "grounded": False, **kept}
    sources = [_source(found, quote)] if found else []
    if sources and services.chat_model is None:
        text = f"{text} [1]"
    stream_answer(text)
    return {"answer": text, "sources": sources, "grounded": True, **kept}


def _source(found: VerifiedSelection, quote: str) -> Source:
    """The selection's place in the book, quoting the sentence the answer used."""
    return Source(
        id=f"{found.doc_path}#{found.anchor}",
        title=found.title,
        url=found.url,
        heading=found.heading,
        quote=quote,
        score=1.0,
    )
