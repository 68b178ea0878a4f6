"""Admission: how many turns run at once in this worker process, and who waits in which order.

A burst must not make everyone wait for everyone. Without a bound, two hundred turns arriving at
once all interleave on one event loop and all finish together at the end of the burst. So each
worker runs at most `concurrency` turns (a turn: anything that runs the graph or calls a model) and
queues the rest first come, first served; a turn starts the moment a running one ends, so early
arrivals finish early. Past the bounds a reader hears so instead of waiting for a client timeout:
a full queue (TURN_QUEUE waiting), a wait that at the measured pace of turns would exceed
TURN_QUEUE_WAIT_SECONDS (refused on arrival, or as soon as the pace is known), or a wait that did
exceed it, is a 503 `server_busy` with a `Retry-After` estimated from that pace.

What the bound is depends on what a turn spends its time on (see `TurnAdmission.for_app`):
- with a chat model, a turn mostly waits for tokens (~20 ms apart, ~2 ms of CPU each), so many run
  at once (TURN_CONCURRENCY, 32): fifty streams arriving together all start at once on two workers;
- without one (extractive answers), a turn is mostly CPU, so running many at once only slows each
  one down: EXTRACTIVE_TURN_CONCURRENCY (4) is enough to cover its short waits on Postgres (2 left the
  core idle meanwhile: 25% fewer turns a second) and finishes turns in arrival order, not together.

Under `tutor serve --workers N` the workers also see each other's counts (`HostShare`, shared memory
set up by `cli.workers`). The kernel spreads connections over the workers at random, and keep-alive
connections stay where they landed, so fifty streams can split 35 / 15: a worker past its
`concurrency` may then borrow places the others leave free, up to `BORROW` more, instead of making
a turn wait a whole answer while a core idles. Borrowing never overtakes this worker's own queue.

The place is taken after the cheap refusals (auth, validation, rate limits, the rewrite policy's
rules) and before the thread is claimed or leased: a refused request never queues, and a queued
one holds nothing another turn needs (api.turns explains the order). A request whose client goes
away while it waits leaves the queue; no turn runs for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableSequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request

from api.errors import ApiError
from core.settings import Settings

KeepAlive = Callable[[], Awaitable[object]]

# How far past its own `concurrency` a worker may go on places other workers leave free: a quarter
# (32 → 40). One worker is one core; 40 streams were ~100% of one here (~115 ms CPU per 4.4 s answer).
BORROW = 0.25


class HostShare:
    """The turns running in each worker of this `tutor serve`: one cell per worker, in shared memory.

    Each worker writes only its own cell and reads the others' without a lock, so the sum can be a
    turn or two stale; borrowing is a best effort, not a bound anyone relies on.
    """

    def __init__(self, counts: MutableSequence[int], slot: int) -> None:
        """`counts`: a `multiprocessing.Array` of ints shared by all workers; `slot`: this worker's cell."""
        self.counts, self.slot = counts, slot

    def publish(self, running: int) -> None:
        """Tell the other workers how many turns this one runs now."""
        self.counts[self.slot] = running

    def others(self) -> int:
        """Turns the other workers run now."""
        return sum(self.counts) - self.counts[self.slot]


_host: HostShare | None = None  # set in a worker process of `tutor serve --workers N` (cli.workers)


def join_host(counts: MutableSequence[int], slot: int) -> None:
    """Make this process worker `slot` of a host whose workers share `counts` (before the app starts)."""
    global _host
    _host = HostShare(counts, slot)


class ClientGone(ApiError):
    """The client disconnected while its turn was waiting (nobody reads this answer)."""

    def __init__(self) -> None:
        super().__init__(499, "client_closed_request", "The client left before its turn started.")


def server_busy(retry_after: int, why: str) -> ApiError:
    """The 503 a turn gets when this worker cannot start it soon enough."""
    return ApiError(
        503,
        "server_busy",
        f"The tutor is answering many questions right now ({why}); try again in {retry_after} seconds.",
        headers={"Retry-After": str(retry_after)},
    )


@dataclass
class Place:
    """One running turn's place; `release` (idempotent) hands it to the next in line."""

    admission: TurnAdmission | None  # None: admission is off, nothing to release
    started: float = field(default_factory=time.monotonic)
    held: bool = True

    def release(self) -> None:
        """Give the place up (to the longest waiting turn, if any)."""
        if self.held and self.admission is not None:
            self.held = False
            self.admission._leave(time.monotonic() - self.started)


class TurnAdmission:
    """A FIFO gate with `concurrency` places and a queue of at most `queue_limit` waiting turns.

    Single event loop, no locks needed: every state change happens between awaits. A released place
    goes straight to the first waiter (its future is resolved with the place already counted), so
    no newcomer can overtake the queue.
    """

    def __init__(
        self,
        concurrency: int,
        queue_limit: int,
        max_wait: float,
        keep_alive_every: float = 5.0,
        host: HostShare | None = None,
    ) -> None:
        """A gate; `concurrency` 0 admits everything at once (admission off).

        With `host` (the other workers' counts) it may borrow up to `BORROW` × `concurrency` more
        places while the host as a whole runs fewer than `concurrency` per worker.
        """
        self.concurrency, self.queue_limit, self.max_wait = concurrency, queue_limit, max_wait
        self.keep_alive_every = keep_alive_every
        self.host = host
        self.ceiling = concurrency + math.ceil(concurrency * BORROW) if host is not None else concurrency
        self._running = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self._deadlines: dict[asyncio.Future[None], float] = {}  # when each waiting turn gives up
        self.mean_turn_seconds = 1.0  # moving average of recent turns, for the wait estimates
        self.finished = 0  # turns that gave their place back: until one has, there is no pace to go by
        self.pace: float | None = None  # moving average of seconds between turns ending, all places taken
        self._full_since_finish: float | None = (
            None  # when the last turn ended, if all places are taken since
        )

    @property
    def running(self) -> int:
        """Turns holding a place in this worker now."""
        return self._running

    @running.setter
    def running(self, value: int) -> None:
        self._running = value
        if self.host is not None:
            self.host.publish(value)

    def _has_room(self) -> bool:
        """Whether one more turn may start here: a place of our own, or one the other workers leave free."""
        if self.running < self.concurrency:
            return True
        if self.host is None or self.running >= self.ceiling:
            return False
        workers = len(self.host.counts)
        return self.running + self.host.others() < self.concurrency * workers

    @classmethod
    def for_app(cls, settings: Settings, *, model_turns: bool) -> TurnAdmission:
        """The gate for a worker whose turns call a chat model (`model_turns`) or are extractive."""
        concurrency = settings.turn_concurrency if model_turns else settings.extractive_turn_concurrency
        # A waiting turn's per-reader slot (api.limits) expires like a thread lease: renew it as often.
        keep_alive_every = settings.turn_lease_seconds / 3
        max_wait = settings.turn_queue_wait_seconds
        return cls(concurrency, settings.turn_queue, max_wait, keep_alive_every, host=_host)

    async def enter(self, request: Request | None = None, keep_alive: KeepAlive | None = None) -> Place:
        """Wait for a place, first come first served; 503 when the queue is full or the wait too long.

        Args:
            request: Watched while waiting: its client disconnecting ends the wait (`ClientGone`).
            keep_alive: Called every few seconds while waiting (e.g. to renew a slot that expires).
        """
        if self.concurrency <= 0:
            return Place(None)
        if not self.waiting and self._has_room():
            self.running += 1
            return Place(self)
        if len(self.waiting) >= self.queue_limit:
            raise server_busy(self.retry_after(), f"{len(self.waiting)} questions are waiting")
        if self.finished and self.expected_wait() > self.max_wait:  # it would only time out: say so now
            raise server_busy(self.retry_after(), f"{len(self.waiting)} questions are waiting")
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        self._deadlines[turn] = deadline = time.monotonic() + self.max_wait
        try:
            await self._wait(turn, deadline, request, keep_alive)
            turn.result()  # a place, or the 503 `_turn_away_late` left there
        except BaseException:
            if not turn.done():
                turn.cancel()
                with contextlib.suppress(ValueError):
                    self.waiting.remove(turn)
            elif not turn.cancelled() and turn.exception() is None:  # a place it will not use: pass it on
                Place(self).release()
            raise
        finally:
            del self._deadlines[turn]
        return Place(self)

    async def _wait(
        self,
        turn: asyncio.Future[None],
        deadline: float,
        request: Request | None,
        keep_alive: KeepAlive | None,
    ) -> None:
        """Sleep until the place comes, the client leaves or the deadline passes; nothing polls.

        Waking only for those (and every `keep_alive_every` for `keep_alive`) keeps two hundred
        waiting turns from costing CPU the running ones need.
        """
        gone = asyncio.ensure_future(_disconnected(request)) if request is not None else None
        try:
            while not turn.done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    why = f"no turn could start within {self.max_wait:g} seconds"
                    raise server_busy(self.retry_after(), why)
                nap = min(remaining, self.keep_alive_every) if keep_alive is not None else remaining
                awaited: set[asyncio.Future[Any]] = {turn} if gone is None else {turn, gone}
                await asyncio.wait(awaited, timeout=nap, return_when=asyncio.FIRST_COMPLETED)
                if turn.done():
                    return
                if gone is not None and gone.done():
                    if gone.result():
                        raise ClientGone()
                    gone = None  # cannot tell: wait without knowing
                if keep_alive is not None:
                    await keep_alive()
        finally:
            if gone is not None:
                gone.cancel()

    def _leave(self, seconds: float) -> None:
        self.finished += 1
        weight = 1.0 if self.finished == 1 else 0.2  # the first turn replaces the 1 s guess
        self.mean_turn_seconds += (seconds - self.mean_turn_seconds) * weight
        now = time.monotonic()
        if self._full_since_finish is not None:  # every place was taken since the last turn ended
            gap = now - self._full_since_finish
            self.pace = gap if self.pace is None else self.pace + (gap - self.pace) * 0.2
        self.running -= 1
        started = 0
        # The freed place, and any the other workers left free meanwhile, go to the longest waiting.
        while self._has_room() and self._hand_on():
            self.running += 1
            started += 1
        self._full_since_finish = now if started else None  # still full: a waiting turn took the place
        self._turn_away_late(now)

    def _hand_on(self) -> bool:
        """Start the longest-waiting turn still waiting, if any (its place counted by the caller)."""
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return True
        return False

    def _turn_away_late(self, now: float) -> None:
        """503 now for each waiting turn that, at the measured pace, would not start before its deadline.

        A burst arrives before the pace is known; once it is, who would only time out hears so at
        once, and those behind them move up.
        """
        if self.pace is None:
            return
        kept: deque[asyncio.Future[None]] = deque()
        for turn in self.waiting:
            if turn.done():
                continue
            if now + (len(kept) + 1) * self.pace > self._deadlines.get(turn, math.inf):
                why = f"no turn could start within {self.max_wait:g} seconds"
                turn.set_exception(server_busy(self.retry_after(), why))
            else:
                kept.append(turn)
        self.waiting = kept

    def expected_wait(self) -> float:
        """Seconds a turn joining the queue now would wait, at the recent pace of turns.

        The pace is how often a turn ended while every place was taken: for CPU-bound turns a turn
        alone is `concurrency` times quicker than one among others, so its length says little about
        the rate. Until the gate has been full, the turns' length over `concurrency` stands in.
        """
        pace = self.pace if self.pace is not None else self.mean_turn_seconds / max(self.concurrency, 1)
        return (len(self.waiting) + 1) * pace

    def retry_after(self) -> int:
        """Seconds until the queue as it stands now has drained, at the recent pace (1 to 60)."""
        estimate = self.expected_wait() + self.mean_turn_seconds
        return min(60, max(1, math.ceil(estimate)))

    @contextlib.asynccontextmanager
    async def place(self, request: Request | None = None) -> AsyncIterator[Place]:
        """`async with admission.place(request):` — a place for the block, released however it ends."""
        held = await self.enter(request)
        try:
            yield held
        finally:
            held.release()


async def _disconnected(request: Request) -> bool:
    """True once the client of `request` (body already read) disconnects; False if that cannot be told.

    After the body, the server's `receive` has nothing to return but the disconnect, so this waits
    on it instead of polling `request.is_disconnected()`.
    """
    try:
        message = await request.receive()
    except Exception:  # a server that cannot say: treat the client as still there
        return False
    return message["type"] == "http.disconnect"


def install_admission(app: FastAPI, settings: Settings, *, model_turns: bool) -> None:
    """Give this worker's app its gate (the lifespan calls it once the chat model is known)."""
    app.state.admission = TurnAdmission.for_app(settings, model_turns=model_turns)


def admission_of(request: Request) -> TurnAdmission:
    """The gate of the app serving `request`."""
    admission: TurnAdmission = request.app.state.admission
    return admission
