"""Generated answers: grounded in retrieved passages (ask) or in the reader's selection only."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig

from chains.citations import Source, map_citations
from chains.prompts import ANSWER_HUMAN, ANSWER_SYSTEM, SELECTION_HUMAN, SELECTION_SYSTEM, as_data
from core.retrieval import Passage

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
    prompt = ChatPromptTemplate.from_messages([("system", ANSWER_SYSTEM), ("human", ANSWER_HUMAN)])
    chain = prompt | model.with_config(tags=[ANSWER_TAG]) | StrOutputParser()
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


async def selection_answer(
    model: BaseChatModel, question: str, selection: str, config: RunnableConfig | None = None
) -> str:
    """An answer from the highlighted text alone: no history, no passages in the prompt."""
    prompt = ChatPromptTemplate.from_messages([("system", SELECTION_SYSTEM), ("human", SELECTION_HUMAN)])
    chain = prompt | model.with_config(tags=[ANSWER_TAG]) | StrOutputParser()
    inputs = {"selection": as_data(selection), "question": as_data(question)}
    return await chain.ainvoke(inputs, config)
