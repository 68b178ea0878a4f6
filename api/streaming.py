"""Turning a graph run into the widget's event stream.

Events (docs/design.md, "The HTTP surface"): `metadata {thread_id, run_id, route}` once the route is
known, `token {delta}`
for the answer only — the answering model call's tokens (tagged `tutor-answer`; the classifier,
query rewrite, title and summary calls stay silent), or, for an answer no model streams (extractive,
a decline, a structured reply), its sentences from the custom stream (`graphs.answer_stream`) —
`sources {sources}` when the answer's sources are settled, then `done` with the graph's whole
output, or `error {code, message}`. `done.answer` is authoritative: citation markers the model
invented are dropped from it, so a client replaces the streamed text with it.

Rewrites stream with their protected spans already restored (`⟦C1⟧` never reaches a reader), and a
rewrite done in several parts at once streams part 0 live and the later parts, in order, when the
node finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from langgraph.types import StreamMode

from chains.answer import ANSWER_TAG
from chains.protect import put_back
from graphs.answer_stream import answer_delta

# What a turn is streamed with: node updates, the answering model's tokens, and the answer deltas
# of nodes that have their answer at once (graphs.answer_stream).
STREAM_MODES: Final[list[StreamMode]] = ["updates", "messages", "custom"]
_OPEN = "⟦"
_MAX_PLACEHOLDER = 12  # longer than any ⟦X123⟧: a lone ⟦ this far back is literal text


class PlaceholderRestorer:
    """Undo placeholders in a token stream: text after an unmatched `⟦` is held back until its `⟧`.

    Mangled forms the final restore repairs (`[[C1]]`, `⟦ C 1 ⟧`) pass through here as typed; the
    `done` event carries the repaired text.
    """

    def __init__(self, originals: Mapping[str, str]) -> None:
        self.originals, self.pending = originals, ""

    def feed(self, delta: str) -> str:
        """The part of `delta` that can be shown now, placeholders restored."""
        text = self.pending + delta
        cut = text.rfind(_OPEN)
        if cut != -1 and "⟧" not in text[cut:] and len(text) - cut < _MAX_PLACEHOLDER:
            text, self.pending = text[:cut], text[cut:]
        else:
            self.pending = ""
        return self._restore(text)

    def flush(self) -> str:
        """What is still held back, once the stream ends."""
        text, self.pending = self.pending, ""
        return self._restore(text)

    def _restore(self, text: str) -> str:
        return put_back(text, self.originals)


class TokenSelector:
    """Picks the reader-facing deltas out of LangGraph's `messages` stream."""

    def __init__(self) -> None:
        self.restorers: dict[int, PlaceholderRestorer] = {}
        self.later_parts: dict[int, list[str]] = defaultdict(list)

    def text(self, mode: str, chunk: Any) -> str:
        """The reader-facing text of one `messages` or `custom` stream item ("" when there is none)."""
        return self.delta(*chunk) if mode == "messages" else answer_delta(chunk)

    def delta(self, chunk: Any, metadata: Mapping[str, Any]) -> str:
        """The text to send now for one streamed model chunk ("" when there is none)."""
        if ANSWER_TAG not in (metadata.get("tags") or ()):
            return ""
        content = chunk.content if isinstance(chunk.content, str) else ""
        if "tutor_placeholders" not in metadata:
            return content
        part = int(metadata.get("tutor_part", 0))
        restorer = self.restorers.setdefault(part, PlaceholderRestorer(metadata["tutor_placeholders"]))
        text = restorer.feed(content)
        if part == 0:
            return text
        self.later_parts[part].append(text)
        return ""

    def drain(self) -> str:
        """What is still held back (end of a restored run, then later parts in order)."""
        held = [self.restorers[0].flush()] if 0 in self.restorers else []
        for part in sorted(set(self.restorers) - {0}):
            held.append("".join(self.later_parts.pop(part, [])) + self.restorers[part].flush())
        self.restorers.clear()
        return "".join(held)


class TokenPacer:
    """Joins answer text into `token` events, at most one per `interval` seconds.

    The first text goes out at once (time to first token is unchanged); text arriving within
    `interval` of the last event is held and goes out as one event when the interval is up. Why:
    each event is a write to the reader's socket, and one per model token (~50 a second) was the
    largest cost a streamed turn adds to the stack's own (bench/api_stream.py); at the default
    50 ms a reader still sees the text grow twenty times a second.
    """

    def __init__(self, interval: float) -> None:
        self.interval, self.held, self.sent_at = interval, "", -math.inf

    def add(self, text: str, now: float) -> str:
        """Hold `text`; return the held text if an event is due now, else ""."""
        self.held += text
        return self.take(now) if self.held and now >= self.due_at else ""

    def take(self, now: float) -> str:
        """All held text, for an event sent now."""
        text, self.held = self.held, ""
        if text:
            self.sent_at = now
        return text

    @property
    def due_at(self) -> float:
        """When the next event may go out."""
        return self.sent_at + self.interval


class TurnRun:
    """A graph run driven in a task of its own, its answer text picked out and paced there.

    Why a task: when a client disconnects, sse-starlette tears the response down with an anyio
    cancel scope, and anyio's repeated cancellation was seen to interrupt LangGraph's own clean-up,
    leaving the running node — and its model call — going. So the route stops the run from
    sse-starlette's disconnect hook, before that teardown: cancelling this task and awaiting it
    lets LangGraph cancel the node properly (tests/api/test_stream.py checks the model connection
    is closed).

    Why pace in that task: the run yields an item per model token (~50 a second per stream), and
    handing each over to the response's task cost a task switch per token. Here the text of each
    item is picked (`TokenSelector`) and held (`TokenPacer`); only what is due is handed over: at
    most one `("token", text)` per interval (a timer sends held text when the model pauses), and
    the run's other items as `("item", (mode, chunk))`, held text first. Text handed over while the
    response is still sending the previous event joins the waiting `token` entry: a busy response
    sends fewer, larger events.
    """

    def __init__(self, source: AsyncIterator[Any], interval: float) -> None:
        self.tokens, self.pacer = TokenSelector(), TokenPacer(interval)
        self.pending: deque[tuple[str, Any]] = deque()
        self.ready = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.alarm: asyncio.TimerHandle | None = None
        self.task = asyncio.create_task(self._pump(source))

    async def _pump(self, source: AsyncIterator[Any]) -> None:
        try:
            async for mode, chunk in source:
                if mode in ("messages", "custom"):  # a model's tokens, or a whole answer's sentences
                    self._hold(self.tokens.text(mode, chunk))
                else:  # a node finished: what it held back goes out before its update
                    self._flush(self.tokens.drain())
                    self._put("item", (mode, chunk))
            self._flush()
            self._put("end", None)
        except Exception as exc:  # handed to the consumer; cancellation just ends the task
            self._flush()  # what the model said before it failed, as when unpaced
            self._put("error", exc)

    def _hold(self, text: str) -> None:
        if delta := self.pacer.add(text, self.loop.time()):
            self._put("token", delta)
        elif self.pacer.held and self.alarm is None:
            self.alarm = self.loop.call_at(self.pacer.due_at, self._on_alarm)

    def _on_alarm(self) -> None:
        self.alarm = None
        self._flush()

    def _flush(self, later: str = "") -> None:
        """Hand over the held text, then `later` (text held back elsewhere), as one `token`."""
        if text := self.pacer.take(self.loop.time()) + later:
            self._put("token", text)

    def _put(self, kind: str, value: Any) -> None:
        if kind == "token" and self.pending and self.pending[-1][0] == "token":
            self.pending[-1] = ("token", self.pending[-1][1] + value)
        else:
            self.pending.append((kind, value))
        self.ready.set()

    async def items(self) -> AsyncIterator[tuple[str, Any]]:
        """`("token", text)` and `("item", (mode, chunk))` as they are due, re-raising the run's error."""
        while True:
            while not self.pending:
                self.ready.clear()
                await self.ready.wait()
            kind, value = self.pending.popleft()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield kind, value

    async def aclose(self) -> None:
        """Stop the task driving the run."""
        if self.alarm is not None:
            self.alarm.cancel()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
