"""Generated answers: grounded in retrieved passages (ask) or in the reader's selection only."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, Field

from chains.citations import Source, map_citations
from chains.parsers import TEXT_OUTPUT
from chains.prompts import ANSWER_PROMPT, SELECTION_PROMPT, as_data
from core.providers import is_model_error
from core.retrieval import Passage

log = logging.getLogger(__name__)

ANSWER_TAG = "tutor-answer"  # tags the model call whose tokens a streaming client should see


def number_passages(passages: Sequence[Passage]) -> str:
    """Passages as numbered, delimited blocks: the numbers are what `[n]` citations refer to."""
    return "\n\n".join(
        f'<passage number="{n}" title="{p.title}" section="{p.heading}">\n{as_data(p.text)}\n</passage>'
        for n, p in enumerate(passages, start=1)
    )


async def grounded_answer(
    model: BaseChatModel,
    question: str,
    passages: Sequence[Passage],
    *,
    language_name: str,
    summary: str = "",
    config: RunnableConfig | None = None,
) -> tuple[str, list[Source]]:
    """An answer from the passages only, its `[n]` markers mapped to the passages given."""
    chain = ANSWER_PROMPT | model.with_config(tags=[ANSWER_TAG]) | TEXT_OUTPUT
    raw = await chain.ainvoke(
        {
            "language_name": language_name,
            "summary": summary or "(none)",
            "passages": number_passages(passages),
            "question": as_data(question),
        },
        config,
    )
    return map_citations(raw, passages)


class SelectionReply(BaseModel):
    """The model's reply about a highlighted passage: whether it answers, and the answer if so."""

    supported: bool = Field(description="True only if the highlighted passage itself states the answer.")
    answer: str = Field(description="The answer, from the highlighted passage only; empty if not supported.")


async def selection_answer(
    model: BaseChatModel, question: str, selection: str, config: RunnableConfig | None = None
) -> SelectionReply | None:
    """The model's structured reply from the highlighted text alone, or None.

    No history and no passages are in the prompt. None when the model's reply is not one (not JSON, a
    field missing): the caller declines.

    Structured, so that declining never hangs on parsing free text. Not tagged `ANSWER_TAG`: the raw
    JSON must not stream; the caller streams the answer once it is judged.
    """
    chain = SELECTION_PROMPT | model.with_structured_output(SelectionReply)
    try:
        reply = await chain.ainvoke({"selection": as_data(selection), "question": as_data(question)}, config)
    except Exception as exc:
        if is_model_error(exc):
            raise  # the provider failed: the turn fails as a model error (503), as on every route
        log.warning("selection reply was not a structured reply (%s)", type(exc).__name__)
        return None
    return reply if isinstance(reply, SelectionReply) else None
