"""Running one reader turn for the HTTP routes: thread, ownership, lease, then the graph.

`/chat`, `/chat/stream` and LangServe's run endpoints all go through `open_turn`, so the rules are
the same everywhere: the turn is admitted by the per-client limits (api.limits) and, for an explicit
personalize/translate mode, by the rewrite policy's cheap rules — both before anything is created;
the thread comes from the body or `X-Thread-Id` (a new one otherwise), someone else's thread is a
404, one turn at a time per thread, and the run's `configurable` is set here from the verified
request, never from the client. A turn the rewrite policy refuses once running leaves no empty
thread behind (`Turn.discard_if_empty`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, cast

from langchain_core.runnables import RunnableConfig
from pydantic import AliasChoices, ConfigDict, Field
from sse_starlette import ServerSentEvent
from starlette.requests import Request

from api.admission import Place, admission_of
from api.deps import AppContext
from api.errors import REFUSAL_STATUS, ApiError, dependency_unavailable, model_failure
from api.limits import TurnSlot, admit_turn, client_address
from api.streaming import STREAM_MODES, TurnRun
from api.thread_access import ThreadLease, check_thread_id, claim_thread, discard_unused_thread, new_thread_id
from core.stores import profiles
from graphs import rewrite_policy as policy
from graphs.context import run_config
from graphs.rewrite_policy import RewriteRefused
from graphs.state import TurnInput, TurnOutput

log = logging.getLogger(__name__)
OUTPUT_KEYS = tuple(TurnOutput.__annotations__)
# Checkpoint once, when the turn ends, rather than after every node: a turn is only worth resuming
# whole (a failed one is simply asked again), and it saves ~20 statements before the model is called.
DURABILITY: Final = "exit"


class ChatRequest(TurnInput):
    """A turn as the widget sends it: the graph's input plus the thread.

    `session_id` is also accepted, for clients of the earlier `/chat` contract.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    thread_id: str | None = Field(
        None,
        validation_alias=AliasChoices("thread_id", "session_id"),
        max_length=128,
        description="Continue this thread (else X-Thread-Id, else a new thread).",
    )

    def graph_input(self) -> dict[str, Any]:
        """The graph's input: the `TurnInput` fields that were given."""
        return self.model_dump(exclude={"thread_id"}, exclude_none=True)


@dataclass
class Turn:
    """A turn ready to run: admitted (its slot and place held), its thread claimed and leased."""

    thread_id: str
    user: str | None
    config: RunnableConfig
    lease: ThreadLease
    slot: TurnSlot
    place: Place
    context: AppContext = field(repr=False)
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    async def end(self) -> None:
        """Give back all the turn holds; every way a turn ends calls it, and a second call does nothing.

        The worker's place first (no await: the next turn in line starts even if this one is being
        cancelled), then the thread's lease, then the reader's slot.
        """
        self.place.release()
        try:
            await self.lease.release()
        finally:
            await self.slot.release()

    async def discard_if_empty(self) -> None:
        """Take back a thread this refused turn created.

        After a refused turn, while the lease is still held: a thread without a single message
        (this turn created it, or every turn on it was refused) is deleted, checkpoints and all.
        """
        await discard_unused_thread(self.context.db, self.context.tutor.checkpointer, self.thread_id)


async def open_turn(
    context: AppContext, request: Request, thread_id: str | None, user: str | None, *, mode: str | None = None
) -> Turn:
    """Admit the turn, wait for a place in this worker, then claim its thread.

    In this order, so that what can refuse cheaply refuses before anything waits or is created: the
    thread id's form (400), the per-client limits (429) and, for mode personalize/translate, the
    rewrite policy's cheap rules; then the wait for a place (api.admission: 503 `server_busy`),
    holding only the reader's slot (queued turns count against the reader's cap, so one reader
    cannot fill the queue); only then claim (or create) the thread (404) and take its lease (409),
    so a waiting turn neither leaves an empty thread behind when it is turned away nor blocks its
    thread while it waits.
    """
    settings = context.settings
    if thread_id is not None:
        check_thread_id(thread_id)
    slot = await admit_turn(context.db, settings, user=user, client=client_address(request, settings))
    try:
        profile = await profiles.load(context.db, user)
        if mode in policy.ACTIONS:
            await policy.check(context.tutor.services, cast(policy.Action, mode), user, profile)
        place = await admission_of(request).enter(
            request, keep_alive=lambda: slot.renew(settings.turn_lease_seconds)
        )
        try:
            thread_id = thread_id or new_thread_id()
            new_thread = await claim_thread(context.db, thread_id, user)
            lease = ThreadLease(
                context.db, thread_id, lease_seconds=settings.turn_lease_seconds, also_renew=slot.renew
            )
            await lease.acquire(settings.thread_busy_wait)
        except BaseException:
            place.release()
            raise
    except BaseException:
        await slot.release()
        raise
    config = run_config(thread_id, user, profile, new_thread=new_thread)
    return Turn(thread_id, user, config, lease, slot, place, context)


def raise_for_turn_error(output: dict[str, Any]) -> None:
    """A turn the graph answered with an error result (e.g. selection mode without a selection)."""
    error = output.get("error")
    if error:
        raise ApiError(REFUSAL_STATUS.get(error["code"], 422), error["code"], error["message"])


async def invoke_turn(context: AppContext, turn: Turn, inputs: dict[str, Any]) -> dict[str, Any]:
    """Run the turn to its end and return the graph's output."""
    try:
        config: RunnableConfig = {**turn.config, "run_id": uuid.UUID(turn.run_id)}
        output: dict[str, Any] = await context.tutor.graph.ainvoke(inputs, config, durability=DURABILITY)
    except RewriteRefused:  # api.errors maps it to its status
        await turn.discard_if_empty()
        raise
    except Exception as exc:
        if (failure := model_failure(exc)) is None:
            raise
        log.warning("chat model failed: %s", type(exc).__name__)
        raise failure from None
    finally:
        await turn.end()
    return output


def _event(name: str, data: Any) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data, ensure_ascii=False, default=str), event=name)


def start_run(context: AppContext, turn: Turn, inputs: dict[str, Any]) -> TurnRun:
    """Start the graph run now, from the route handler (see `TurnRun` for why)."""
    config: RunnableConfig = {**turn.config, "run_id": uuid.UUID(turn.run_id)}
    stream = context.tutor.graph.astream(inputs, config, stream_mode=STREAM_MODES, durability=DURABILITY)
    return TurnRun(stream, context.settings.token_event_interval)


async def turn_events(run: TurnRun, turn: Turn) -> AsyncGenerator[ServerSentEvent, None]:
    """The events of one run (see api.streaming).

    However it ends — done, failed, or abandoned by the client — the run is stopped and the thread's lease
    given back.
    """
    output: dict[str, Any] = {}
    try:
        async for kind, value in run.items():
            if kind == "token":
                yield _event("token", {"delta": value})
                continue
            _mode, chunk = value  # "updates": nodes finished
            for node, update in chunk.items():
                for event in _node_events(node, update or {}, output, turn):
                    yield event
        output["thread_id"] = turn.thread_id
        if error := output.get("error"):
            yield _event("error", {"code": error["code"], "message": error["message"]})
        else:
            yield _event("done", {key: output.get(key) for key in OUTPUT_KEYS})
    except RewriteRefused as exc:
        await turn.discard_if_empty()
        yield _event("error", {"code": exc.code, "message": exc.message})
    except Exception as exc:  # the text the model sent before it failed has gone out already (TurnRun)
        if (failure := model_failure(exc)) is not None:
            log.warning("chat model failed mid-stream: %s", type(exc).__name__)
            yield _event("error", {"code": failure.code, "message": failure.message})
        elif unavailable := dependency_unavailable(exc):
            log.warning("%s mid-stream: %s", unavailable.code, type(exc).__name__)
            yield _event("error", {"code": unavailable.code, "message": unavailable.message})
        else:
            log.exception("turn failed")
            yield _event("error", {"code": "internal_error", "message": "The turn could not be completed."})
    finally:
        await run.aclose()
        await turn.end()


def _node_events(
    node: str, update: dict[str, Any], output: dict[str, Any], turn: Turn
) -> list[ServerSentEvent]:
    """Events for one finished node: metadata (route known) or sources."""
    output.update({key: value for key, value in update.items() if key in OUTPUT_KEYS})
    if node == "intake":
        meta = {"thread_id": turn.thread_id, "run_id": turn.run_id, "route": output.get("route")}
        return [_event("metadata", meta)]
    if "sources" in update:
        return [_event("sources", {"sources": output["sources"]})]
    return []


async def finish_stream(events: AsyncGenerator[Any, None], run: TurnRun, turn: Turn) -> None:
    """After the response, however it went: stop the run and give the lease back.

    A stream that never started (the client left first) still has both. Each step is a
    no-op when already done.
    """
    with contextlib.suppress(RuntimeError):  # the generator is already closed
        await events.aclose()
    await run.aclose()
    await turn.end()


def chat_response(output: dict[str, Any]) -> dict[str, Any]:
    """`POST /chat`'s body: the earlier contract's fields first, then the rest of the output."""
    return {
        "response": output.get("answer", ""),
        "thread_id": output["thread_id"],
        "session_id": output["thread_id"],
        "timestamp": datetime.now(UTC).isoformat(),
        "route": output.get("route"),
        "sources": output.get("sources", []),
        "grounded": output.get("grounded"),
        "language": output.get("language"),
        "verified_selection": output.get("verified_selection"),
        "title": output.get("title"),
    }
