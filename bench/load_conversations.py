"""The conversation load of bench/load.py: many readers, each asking several turns on its own thread.

One reader loop drives either API — ours (`POST /chat/stream`, the widget's events) or LangGraph's own
(`POST /threads`, then `POST /threads/{id}/runs/stream`) — through the same SSE parser (the test suite's,
tests/api/sse.py) and the same httpx client settings, so the client side costs the same for both.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from chains.answer import ANSWER_TAG
from tests.api.sse import read_events

# 503s that mean a dependency failed, not a full admission queue: errors, not deliberate refusals.
FAILURE_CODES = {"database_unavailable", "vector_store_unavailable", "model_unavailable", "needs_chat_model"}
MAX_RETRY_WAIT = 5.0  # seconds a reader waits on a Retry-After before asking the same turn again


@dataclass
class Outcome:
    """How one turn ended: `done`, `http` (a status other than 200), `sse_error`, `truncated`,
    `timeout` or `exception`; `ttft` in seconds from send (thread creation included for LangGraph)."""

    kind: str
    thread: str | None = None
    ttft: float | None = None
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None


@dataclass
class Tally:
    """What all readers saw; `ttft` holds the added time to first token of every completed turn (ms)."""

    first_token: float
    ttft: list[float] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    error_codes: Counter[str] = field(default_factory=Counter)
    deliberate: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    conversations: int = 0

    def add(self, outcome: Outcome) -> None:
        """Count one turn's outcome."""
        self.kinds[outcome.kind] += 1
        if outcome.status is not None:
            self.statuses[str(outcome.status)] += 1
        if outcome.kind == "done" and outcome.ttft is not None:
            self.ttft.append(outcome.ttft * 1000 - self.first_token * 1000)
        elif outcome.kind != "done":
            key = f"{outcome.kind}:{outcome.status or ''}:{outcome.code or ''}"
            (self.deliberate if is_deliberate(outcome) else self.error_codes)[key] += 1

    def summary(self) -> dict[str, Any]:
        """Counts for the report (errors exclude deliberate 503s and truncated streams)."""
        errors = sum(self.error_codes.values()) - self.kinds["truncated"]
        return {
            "turns_done": self.kinds["done"],
            "conversations_started": self.conversations,
            "errors": errors,
            "truncated": self.kinds["truncated"],
            "timeouts": self.kinds["timeout"],
            "deliberate_503": sum(self.deliberate.values()),
            "outcomes": dict(self.kinds),
            "http_statuses": dict(self.statuses),
            "error_kinds": dict(self.error_codes),
            "deliberate_kinds": dict(self.deliberate),
            "error_examples": self.examples[:5],
        }


def is_deliberate(outcome: Outcome) -> bool:
    """A 503 with Retry-After from a full admission queue (not a failed dependency)."""
    return (
        outcome.kind == "http"
        and outcome.status == 503
        and outcome.retry_after is not None
        and outcome.code not in FAILURE_CODES
    )


async def refused(response: httpx.Response, thread: str | None) -> Outcome:
    """A non-200 answer: its status, error code and Retry-After."""
    await response.aread()
    try:
        code = response.json().get("error", {}).get("code") or response.json().get("code")
    except (ValueError, AttributeError):
        code = None
    retry = response.headers.get("retry-after")
    return Outcome(
        "http",
        thread,
        status=response.status_code,
        code=code,
        retry_after=float(retry or 0) if retry else None,
    )


async def tutor_turn(client: httpx.AsyncClient, thread: str | None, message: str) -> Outcome:
    """One turn on our API: metadata → token… → sources → done, or error."""
    body: dict[str, Any] = {"message": message} | ({"thread_id": thread} if thread else {})
    started, ttft = time.monotonic(), None
    async with client.stream("POST", "/chat/stream", json=body) as response:
        if response.status_code != 200:
            return await refused(response, thread)
        async for event in read_events(response):
            if event.name == "metadata":
                thread = event.data["thread_id"]
            elif event.name == "token" and ttft is None:
                ttft = time.monotonic() - started
            elif event.name == "error":
                return Outcome("sse_error", thread, code=event.data.get("code"))
            elif event.name == "done":
                return Outcome("done", thread, ttft)
    return Outcome("truncated", thread, ttft)


async def langgraph_turn(client: httpx.AsyncClient, thread: str | None, message: str) -> Outcome:
    """One turn on LangGraph's API (a thread first, if new), streaming the answer's message tokens."""
    started, ttft = time.monotonic(), None
    if thread is None:
        created = await client.post("/threads", json={})
        if created.status_code != 200:
            return await refused(created, thread)
        thread = created.json()["thread_id"]
    body = {
        "assistant_id": "tutor",
        "input": {"message": message},
        "stream_mode": ["messages-tuple", "updates"],
    }
    finished = False
    async with client.stream("POST", f"/threads/{thread}/runs/stream", json=body) as response:
        if response.status_code != 200:
            return await refused(response, thread)
        async for event in read_events(response):
            if event.name == "messages" and ttft is None:
                chunk, metadata = event.data
                if chunk.get("content") and ANSWER_TAG in (metadata.get("tags") or ()):
                    ttft = time.monotonic() - started
            elif event.name == "updates" and "remember" in event.data:
                finished = True  # the graph's last node (graphs/graph.py) has run
            elif event.name == "error":
                return Outcome("sse_error", thread, code=str(event.data)[:80])
    return Outcome("done" if finished else "truncated", thread, ttft)


Turn = Callable[[httpx.AsyncClient, str | None, str], Awaitable[Outcome]]


async def drive(
    url: str,
    turn: Turn,
    *,
    readers: int,
    turns: int,
    seconds: float,
    turn_timeout: float,
    think: float,
    questions: list[str],
    first_token: float,
) -> Tally:
    """`readers` readers, each holding conversations of `turns` turns (a new thread after each) until
    `seconds` have passed; a turn in flight then is still waited for. A deliberate 503 is retried."""
    tally, asked = Tally(first_token), iter(range(1 << 30))
    limits = httpx.Limits(max_connections=readers + 10, max_keepalive_connections=readers + 10)

    async def reader(client: httpx.AsyncClient, offset: float) -> None:
        await asyncio.sleep(offset)
        while time.monotonic() < deadline:
            thread: str | None = None
            tally.conversations += 1
            for _ in range(turns):
                if time.monotonic() >= deadline:
                    break
                outcome = await one_turn(client, thread, questions[next(asked) % len(questions)])
                tally.add(outcome)
                if is_deliberate(outcome):
                    await asyncio.sleep(min(outcome.retry_after or 1, MAX_RETRY_WAIT))
                    continue
                if outcome.kind != "done":
                    break  # a failed conversation starts over on a new thread
                thread = outcome.thread
                await asyncio.sleep(think)

    async def one_turn(client: httpx.AsyncClient, thread: str | None, question: str) -> Outcome:
        try:
            return await asyncio.wait_for(turn(client, thread, question), turn_timeout)
        except TimeoutError:
            return Outcome("timeout", thread)
        except Exception as exc:
            if len(tally.examples) < 20:
                tally.examples.append(repr(exc)[:200])
            return Outcome("exception", thread, code=type(exc).__name__)

    async with httpx.AsyncClient(base_url=url, timeout=turn_timeout, limits=limits) as client:
        # The clock starts once the client exists: creating it took ~0.5 s on a loaded machine,
        # and a 0.5 s run then asked nothing of its second reader.
        deadline = time.monotonic() + seconds
        ramp = min(5.0, seconds / 10)  # starts spread over a few seconds, as a class arrives
        await asyncio.gather(*(reader(client, i * ramp / readers) for i in range(readers)))
    return tally
