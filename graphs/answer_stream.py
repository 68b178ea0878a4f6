"""Answers no model streams — extractive ones, declines, structured replies — as deltas all the same.

A streaming client renders `token` deltas; an answer that arrives only in `done` shows as an empty
bubble until the end. So a node that has its whole answer at once writes it, a sentence at a time,
to LangGraph's custom stream (`stream_mode="custom"`), and `api.turns.turn_events` turns those
writes into `token` events like a model's. Every route and mode then has the same event sequence.

Outside a run that asks for the custom mode (`ainvoke`, LangServe's `/invoke` and `/stream_events`)
LangGraph hands the node a writer that does nothing: the answer is in the output as ever.
"""

from __future__ import annotations

import re
from typing import Any

from langgraph.config import get_stream_writer

ANSWER_DELTA = "tutor_answer_delta"  # the key of an answer delta in the custom stream
# Cut after a sentence's end (or its citation markers) where the next piece is not another marker,
# so "It does. [1] Next one. [2]" streams as "It does. [1]", " Next one. [2]".
_PIECE_END = re.compile(r"(?<=[.!?۔؟\]])(?=\s+(?!\[))")


def answer_pieces(text: str) -> list[str]:
    """`text` cut into sentence pieces whose concatenation is exactly `text`."""
    return [piece for piece in _PIECE_END.split(text) if piece]


def stream_answer(text: str) -> None:
    """Write `text` to the run's custom stream, a sentence at a time, in order."""
    write = get_stream_writer()
    for piece in answer_pieces(text):
        write({ANSWER_DELTA: piece})


def answer_delta(chunk: Any) -> str:
    """The answer text of one custom-stream chunk ("" for anything else written there)."""
    if isinstance(chunk, dict) and isinstance(chunk.get(ANSWER_DELTA), str):
        return chunk[ANSWER_DELTA]
    return ""
