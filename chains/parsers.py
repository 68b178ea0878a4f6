"""The output parser of every chain whose answer is plain text."""

from __future__ import annotations

from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import Generation


class TextOutput(StrOutputParser):
    """`StrOutputParser`, parsing on the event loop.

    LangChain's async parse hands the (trivial) sync parse to the default thread pool: a thread
    hop per model call, measurable CPU on a busy server. Streamed chunks (`atransform`) and the
    parsed text are exactly `StrOutputParser`'s.
    """

    async def aparse_result(self, result: list[Generation], *, partial: bool = False) -> Any:
        """Parse `result` inline (the text of its first generation)."""
        return self.parse_result(result, partial=partial)


TEXT_OUTPUT = TextOutput()
