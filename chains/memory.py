"""Conversation bookkeeping: thread titles and the running summary of turns beyond the window."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

from chains.condense import render_history
from chains.parsers import TEXT_OUTPUT
from chains.prompts import SUMMARY_PROMPT, TITLE_PROMPT

log = logging.getLogger(__name__)
TITLE_WORDS = 8
OFFLINE_SUMMARY_CHARS = 800


def offline_title(question: str) -> str:
    """The question's first words."""
    words = question.split()
    return " ".join(words[:TITLE_WORDS]) + ("…" if len(words) > TITLE_WORDS else "")


async def make_title(
    model: BaseChatModel | None, question: str, answer: str, config: RunnableConfig | None = None
) -> str:
    """A short thread title: by the model when there is one (falling back to the question's words)."""
    if model is None:
        return offline_title(question)
    try:
        title = await (TITLE_PROMPT | model | TEXT_OUTPUT).ainvoke(
            {"question": question[:1000], "answer": answer[:1000]}, config
        )
    except Exception as exc:  # a title is a nicety: never fail the turn over it
        log.warning("title generation failed (%s)", type(exc).__name__)
        return offline_title(question)
    return " ".join(title.strip().strip("\"'").split())[:80] or offline_title(question)


async def update_summary(
    model: BaseChatModel | None,
    summary: str,
    dropped: Sequence[AnyMessage],
    config: RunnableConfig | None = None,
) -> str:
    """Fold messages leaving the window into the running summary."""
    if not dropped:
        return summary
    if model is not None:
        try:
            return await (SUMMARY_PROMPT | model | TEXT_OUTPUT).ainvoke(
                {"summary": summary or "(none)", "turns": render_history(dropped, limit=len(dropped))},
                config,
            )
        except Exception as exc:
            log.warning("summary update failed (%s); keeping an offline summary", type(exc).__name__)
    asked = [" ".join(str(m.content).split())[:160] for m in dropped if isinstance(m, HumanMessage)]
    merged = "; ".join(filter(None, [summary.removeprefix("Earlier the reader asked: "), *asked]))
    # Keep the most recent part when it grows too long.
    return "Earlier the reader asked: " + merged[-OFFLINE_SUMMARY_CHARS:] if merged else summary
