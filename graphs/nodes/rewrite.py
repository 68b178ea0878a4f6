"""The personalize and translate routes: rewrite a subject for the reader, keeping code and facts.

The subject is, in order: the explicit `content`, the selection, the last answer of the thread, or
the chapter named by `page` (reassembled from its chunks). Both need a chat model; in extractive mode
they return a clear error result (the API maps it to 503).
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig

from chains import rewrite
from chains.retriever import page_doc_path
from core.language import detect_language
from core.profile import LearnerProfile
from graphs.context import ServerContext, TutorServices
from graphs.state import TurnError, TutorState

DEFAULT_LANGUAGE = "ur"


def needs_model(route: str) -> TurnError:
    return TurnError(
        code="needs_chat_model",
        message=f"The {route} route needs a chat model: set CHAT_MODEL (and the provider's API key).",
    )


async def find_subject(state: TutorState, services: TutorServices) -> str | None:
    if state.get("content"):
        return state["content"]
    if state.get("selected_text"):
        return state["selected_text"]
    last_answer = next(
        (str(m.content) for m in reversed(state.get("messages", [])) if isinstance(m, AIMessage)), None
    )
    if last_answer:
        return last_answer
    doc_path = page_doc_path(state.get("page"), services.settings.book_docs_route)
    if doc_path:
        return await services.retriever.chapter(doc_path) or None
    return None


async def personalize(
    state: TutorState, config: RunnableConfig, *, services: TutorServices
) -> dict[str, Any]:
    if services.chat_model is None:
        return {"error": needs_model("personalize")}
    subject = await find_subject(state, services)
    if not subject:
        return {"error": _nothing_to_rewrite("personalize")}
    profile = ServerContext.from_config(config).profile or LearnerProfile()
    text = await rewrite.personalize(services.chat_model, subject, profile, config=config)
    # The subject's own language (personalizing keeps it), not the thread's last one: after a
    # translated turn that was Urdu, and an English passage would be marked right-to-left.
    return {"answer": text, "language": detect_language(subject)}


async def translate(state: TutorState, config: RunnableConfig, *, services: TutorServices) -> dict[str, Any]:
    if services.chat_model is None:
        return {"error": needs_model("translate")}
    subject = await find_subject(state, services)
    if not subject:
        return {"error": _nothing_to_rewrite("translate")}
    profile = ServerContext.from_config(config).profile
    target = state.get("target_language") or (profile and profile.preferred_language) or DEFAULT_LANGUAGE
    text = await rewrite.translate(
        services.chat_model, subject, str(target), glossary=services.glossary, config=config
    )
    return {"answer": text, "language": str(target)}


def _nothing_to_rewrite(route: str) -> TurnError:
    return TurnError(
        code="no_subject",
        message=f"Nothing to {route}: send `content`, select text, or ask a question first.",
    )
