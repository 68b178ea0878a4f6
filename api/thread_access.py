"""Threads as the API sees them: who owns one, what it says, and who is running a turn on it.

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

log = logging.getLogger(__name__)
THREAD_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def new_thread_id() -> str:
    return str(uuid.uuid4())  # 122 random bits: an anonymous thread's only key


def check_thread_id(thread_id: str) -> str:
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
    (`discard_unused_thread`) instead of leaving an empty thread in the reader's list."""
    check_thread_id(thread_id)
    async with db.pool.connection() as conn:
        inserted = await (
            await conn.execute(
                "INSERT INTO threads (thread_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING"
                " RETURNING thread_id",
                (thread_id, user),
            )
        ).fetchone()
        row = await (
            await conn.execute("SELECT user_id FROM threads WHERE thread_id = %s", (thread_id,))
        ).fetchone()
    if row is None or not _visible(row["user_id"], user):
        raise not_found()
    return inserted is not None


async def discard_unused_thread(db: Database, checkpointer: BaseCheckpointSaver[Any], thread_id: str) -> None:
    """Delete a thread that holds no messages (its only turn was refused before it ran)."""
    async with db.pool.connection() as conn:
        used = await (
            await conn.execute("SELECT 1 FROM thread_messages WHERE thread_id = %s LIMIT 1", (thread_id,))
        ).fetchone()
    if used is None:
        await delete_thread(db, checkpointer, thread_id)


async def owned_thread(db: Database, thread_id: str, user: str | None) -> dict[str, Any]:
    """The thread's row, if `user` may see it; else 404."""
    if not THREAD_ID.match(thread_id):
        raise not_found()
    async with db.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT thread_id, user_id, title, created_at, updated_at FROM threads WHERE thread_id = %s",
                (thread_id,),
            )
        ).fetchone()
    if row is None or not _visible(row["user_id"], user):
        raise not_found()
    return dict(row)


async def list_threads(db: Database, user: str, limit: int, offset: int) -> list[dict[str, Any]]:
    async with db.pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT t.thread_id, t.title, t.created_at, t.updated_at,"
                " (SELECT count(*) FROM thread_messages m WHERE m.thread_id = t.thread_id) AS messages"
                " FROM threads t WHERE t.user_id = %s"
                " ORDER BY t.updated_at DESC, t.thread_id LIMIT %s OFFSET %s",
                (user, limit, offset),
            )
        ).fetchall()
    return [dict(row) for row in rows]


async def thread_messages(db: Database, thread_id: str) -> list[dict[str, Any]]:
    async with db.pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT seq, role, content, route, sources, grounded, language, created_at"
                " FROM thread_messages WHERE thread_id = %s ORDER BY seq",
                (thread_id,),
            )
        ).fetchall()
    return [dict(row) for row in rows]


async def rename_thread(db: Database, thread_id: str, title: str) -> None:
    async with db.pool.connection() as conn:
        await conn.execute(
            "UPDATE threads SET title = %s, updated_at = now() WHERE thread_id = %s", (title, thread_id)
        )


async def delete_thread(db: Database, checkpointer: BaseCheckpointSaver[Any], thread_id: str) -> None:
    """Checkpoints first: if the second step fails the thread still lists and can be deleted again."""
    await checkpointer.adelete_thread(thread_id)
    async with db.pool.connection() as conn:
        await conn.execute("DELETE FROM threads WHERE thread_id = %s", (thread_id,))


class ThreadLease:
    """Hold a thread for one turn (see the module docstring).

    The hold is short (TURN_LEASE_SECONDS, 15 s by default) and a heartbeat task renews it every
    third of that while the turn runs, so a long answer keeps its thread while a server killed
    mid-turn leaves it locked for one lease at most, not for the longest turn imaginable. `release`
    is idempotent, so a stream can release both when it ends and from a clean-up hook that runs if
    it never started."""

    def __init__(
        self,
        db: Database,
        thread_id: str,
        *,
        lease_seconds: float,
        also_renew: Callable[[float], Awaitable[object]] | None = None,
    ) -> None:
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
        if self.held:
            self.held = False
            if self._heartbeat is not None:
                self._heartbeat.cancel()
            # Shielded: a cancelled turn (the client went away) must still give the thread back.
            await asyncio.shield(self._give_back())

    async def _renew_while_held(self) -> None:
        """Every lease/3 seconds: push the expiry one lease ahead. Stops when the lease is released
        (or dropped by setting `held` False, as DELETE does once the row is gone)."""
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
        async with self.db.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "UPDATE threads SET busy_token = %s, busy_until = now() + make_interval(secs => %s)"
                    " WHERE thread_id = %s AND (busy_until IS NULL OR busy_until < now())"
                    " RETURNING thread_id",
                    (self.token, self.lease_seconds, self.thread_id),
                )
            ).fetchone()
        return row is not None

    async def _renew(self) -> bool:
        async with self.db.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "UPDATE threads SET busy_until = now() + make_interval(secs => %s)"
                    " WHERE thread_id = %s AND busy_token = %s RETURNING thread_id",
                    (self.lease_seconds, self.thread_id, self.token),
                )
            ).fetchone()
        return row is not None

    async def _give_back(self) -> None:
        try:
            async with self.db.pool.connection() as conn:
                await conn.execute(
                    "UPDATE threads SET busy_token = NULL, busy_until = NULL"
                    " WHERE thread_id = %s AND busy_token = %s",
                    (self.thread_id, self.token),
                )
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            # Postgres is away: the lease lapses by itself within one lease, so a turn that has
            # already answered is not turned into a failure for this.
            log.warning("could not release thread %s: database unavailable", self.thread_id)
