"""Who may use a thread, and who is running a turn on it: the API's policy over `core.stores.threads`.

Ownership: a thread belongs to the user who started it; an anonymous thread (user NULL) to whoever
holds its unguessable id. Any other caller gets the same 404 as for a thread that does not exist.

One turn at a time per thread, across processes: a turn takes a lease on the thread's row (a token
and an expiry) rather than holding a Postgres connection or advisory lock for the whole turn, so
fifty concurrent streams do not pin fifty pooled connections. A second turn waits up to
THREAD_BUSY_WAIT seconds for the lease, then gets 409. A crashed process's lease expires within
TURN_LEASE_SECONDS (see `ThreadLease`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from api.errors import ApiError, not_found
from core.db import Database, is_database_unavailable
from core.stores import threads

log = logging.getLogger(__name__)
THREAD_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def new_thread_id() -> str:
    """A fresh thread id."""
    return str(uuid.uuid4())  # 122 random bits: an anonymous thread's only key


def check_thread_id(thread_id: str) -> str:
    """`thread_id` itself if well formed; else 400 `invalid_thread_id`."""
    if not THREAD_ID.match(thread_id):
        raise ApiError(
            400, "invalid_thread_id", "A thread id is 8-128 characters of letters, digits and . _ : -"
        )
    return thread_id


def _visible(owner: str | None, user: str | None) -> bool:
    return owner is None or owner == user


async def claim_thread(db: Database, thread_id: str, user: str | None) -> bool:
    """Create the thread for `user` if it is new; 404 if it exists and is not theirs.

    True when this call created the row, so a caller whose turn then does not run can take it back
    (`discard_unused_thread`) instead of leaving an empty thread in the reader's list.
    """
    check_thread_id(thread_id)
    if await threads.create(db, thread_id, user):
        return True  # made just now, for `user`: no need to read it back
    row = await threads.get(db, thread_id)
    if row is None or not _visible(row["user_id"], user):
        raise not_found()
    return False


async def discard_unused_thread(db: Database, checkpointer: BaseCheckpointSaver[Any], thread_id: str) -> None:
    """Delete a thread that holds no messages (its only turn was refused before it ran)."""
    if not await threads.has_messages(db, thread_id):
        await delete_thread(db, checkpointer, thread_id)


async def owned_thread(db: Database, thread_id: str, user: str | None) -> dict[str, Any]:
    """The thread's row, if `user` may see it; else 404."""
    if not THREAD_ID.match(thread_id):
        raise not_found()
    row = await threads.get(db, thread_id)
    if row is None or not _visible(row["user_id"], user):
        raise not_found()
    return row


async def delete_thread(db: Database, checkpointer: BaseCheckpointSaver[Any], thread_id: str) -> None:
    """Delete the thread's checkpoints, then its row and transcript.

    Checkpoints first: if the second step fails the thread still lists and can be deleted again.
    """
    await checkpointer.adelete_thread(thread_id)
    await threads.delete(db, thread_id)


class ThreadLease:
    """Hold a thread for one turn (see the module docstring).

    The hold is short (TURN_LEASE_SECONDS, 15 s by default) and a heartbeat task renews it every
    third of that while the turn runs, so a long answer keeps its thread while a server killed
    mid-turn leaves it locked for one lease at most, not for the longest turn imaginable. `release`
    is idempotent, so a stream can release both when it ends and from a clean-up hook that runs if
    it never started.
    """

    def __init__(
        self,
        db: Database,
        thread_id: str,
        *,
        lease_seconds: float,
        also_renew: Callable[[float], Awaitable[object]] | None = None,
    ) -> None:
        """Prepare a lease on `thread_id` (not taken until `acquire`).

        Args:
            db: The database holding the thread's row.
            thread_id: The thread to hold.
            lease_seconds: How long one hold lasts unless renewed.
            also_renew: Called with `lease_seconds` at each successful renewal.
        """
        self.db, self.thread_id, self.lease_seconds = db, thread_id, lease_seconds
        self.also_renew = also_renew  # another hold of the same turn, kept alive by the same heartbeat
        self.token = uuid.uuid4().hex
        self.held = False
        self._heartbeat: asyncio.Task[None] | None = None

    async def acquire(self, wait: float) -> None:
        """Take the lease, retrying with backoff for up to `wait` seconds; then 409."""
        deadline, pause = time.monotonic() + wait, 0.02
        while not await self._take():
            if time.monotonic() >= deadline:
                raise ApiError(
                    409, "thread_busy", "Another turn is running on this thread; try again when it finishes."
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)
        self.held = True
        self._heartbeat = asyncio.create_task(self._renew_while_held())

    async def release(self) -> None:
        """Give the thread back (shielded from cancellation); a second call does nothing."""
        if self.held:
            self.held = False
            if self._heartbeat is not None:
                self._heartbeat.cancel()
            # Shielded: a cancelled turn (the client went away) must still give the thread back.
            await asyncio.shield(self._give_back())

    async def _renew_while_held(self) -> None:
        """Every lease/3 seconds: push the expiry one lease ahead.

        Stops when the lease is released (or dropped by setting `held` False, as DELETE does once
        the row is gone).
        """
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            if not self.held:
                return
            try:
                renewed = await self._renew()
                if renewed and self.also_renew is not None:
                    await self.also_renew(self.lease_seconds)
            except Exception as exc:  # Postgres unreachable: try again at the next beat
                log.warning("could not renew the lease on thread %s: %s", self.thread_id, type(exc).__name__)
                continue
            if not renewed:
                # Expired and taken by another turn (e.g. this one stalled for a whole lease while
                # Postgres was away): two turns may now run on the thread. Nothing to hold any more.
                log.warning("turn lost its lease on thread %s", self.thread_id)
                return

    async def _take(self) -> bool:
        return await threads.take_lease(self.db, self.thread_id, self.token, self.lease_seconds)

    async def _renew(self) -> bool:
        return await threads.renew_lease(self.db, self.thread_id, self.token, self.lease_seconds)

    async def _give_back(self) -> None:
        try:
            await threads.release_lease(self.db, self.thread_id, self.token)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            # Postgres is away: the lease lapses by itself within one lease, so a turn that has
            # already answered is not turned into a failure for this.
            log.warning("could not release thread %s: database unavailable", self.thread_id)
