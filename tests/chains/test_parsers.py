"""Text chains parse on the event loop: no thread hop per model call, the same text."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.output_parsers import base as parser_base

from chains.parsers import TEXT_OUTPUT
from core.providers import BlockedAnswerCheck


def no_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("parsed in a thread")

    monkeypatch.setattr(parser_base, "run_in_executor", refuse)


async def test_text_output_parses_inline_to_the_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    message = AIMessage(content="Topics carry streams of messages [1].")
    expected = await StrOutputParser().ainvoke(message)
    no_threads(monkeypatch)
    assert await TEXT_OUTPUT.ainvoke(message) == expected
    with pytest.raises(AssertionError, match="in a thread"):  # what LangChain's own parser does
        await StrOutputParser().ainvoke(message)


async def test_text_output_streams_like_str_output_parser() -> None:
    chunks = ["Topics ", "carry ", "streams."]
    ours = [c async for c in TEXT_OUTPUT.atransform(_aiter(chunks))]
    theirs = [c async for c in StrOutputParser().atransform(_aiter(chunks))]
    assert ours == theirs == chunks


def test_the_blocked_answer_check_runs_on_the_event_loop() -> None:
    # Otherwise LangChain runs each streamed token's callback in the default thread pool.
    assert BlockedAnswerCheck().run_inline and BlockedAnswerCheck().raise_error


async def _aiter(items: list[str]) -> Any:
    for item in items:
        yield AIMessage(content=item)
