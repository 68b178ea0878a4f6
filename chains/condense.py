"""Follow-up questions become standalone English search queries.

"And how is that different from a service?" cannot be searched as is. With a chat model, one
structured call rewrites it from the recent turns (and renders non-English questions in English, so
an Urdu question retrieves English passages). Offline, a follow-up borrows the previous question's
words. The call is skipped when there is nothing to resolve (first turn, English).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, Field, ValidationError

from chains.prompts import CONDENSE_PROMPT
from core.language import detect_language

log = logging.getLogger(__name__)

_FOLLOW_UP = re.compile(
    r"^(?:and|but|so|what about|how about|why|also)\b|\b(?:it|its|that|this|those|these|they|them|one)\b",
    re.IGNORECASE,
)


class StandaloneQuery(BaseModel):
    """The reader's message as a standalone English search query, and the language it was in."""

    query: str = Field(description="The standalone search query, in English")
    language: str = Field(description="BCP-47 code of the language the reader wrote in, e.g. en, ur")


def render_history(messages: Sequence[AnyMessage], limit: int = 6) -> str:
    """The last turns as plain `Reader:`/`Tutor:` lines for a prompt."""
    lines = []
    for message in list(messages)[-limit:]:
        who = "Reader" if isinstance(message, HumanMessage) else "Tutor"
        lines.append(f"{who}: {' '.join(str(message.content).split())[:600]}")
    return "\n".join(lines)


def condense_offline(message: str, history: Sequence[AnyMessage]) -> StandaloneQuery:
    """Without a model: a short follow-up is searched together with the previous question."""
    language = detect_language(message)
    previous = [m for m in history if isinstance(m, HumanMessage)]
    if previous and len(message.split()) <= 12 and _FOLLOW_UP.search(message):
        return StandaloneQuery(query=f"{previous[-1].content} {message}", language=language)
    return StandaloneQuery(query=message, language=language)


async def condense(
    model: BaseChatModel | None,
    message: str,
    history: Sequence[AnyMessage],
    summary: str = "",
    config: RunnableConfig | None = None,
) -> StandaloneQuery:
    """The standalone English query for `message` and the language it was written in."""
    language = detect_language(message)
    if model is None:
        return condense_offline(message, history)
    if not history and language == "en":
        return StandaloneQuery(query=message, language="en")
    chain = CONDENSE_PROMPT | model.with_structured_output(StandaloneQuery)
    try:
        result = await chain.ainvoke(
            {
                "summary": summary or "(none)",
                "history": render_history(history) or "(none)",
                "message": message,
            },
            config,
        )
    except (OutputParserException, ValidationError, ValueError) as exc:
        # A reply that is not the asked-for JSON must not fail the turn: search the way the
        # offline mode does. (Provider errors still propagate: the answer call would fail too.)
        log.warning("query rewrite unusable (%s); searching without it", type(exc).__name__)
        return condense_offline(message, history)
    if not isinstance(result, StandaloneQuery):
        return condense_offline(message, history)
    return result
