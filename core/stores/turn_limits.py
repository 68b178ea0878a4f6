"""Counters behind the limits on reader turns: `turn_rate_windows` and `active_turns`.

What the limits are and what a caller over them is told is `api.limits`' business; this module
only counts, in Postgres, so the counts hold across workers and replicas (the window uses the
database's clock).
"""

from __future__ import annotations

import random

from core.db import Database

SLOT_LOCK_CLASS = 72_616_003  # advisory-lock namespace for per-holder slot counting (see core.db)
_COUNT = """
INSERT INTO turn_rate_windows AS w (client, window_start, used)
VALUES (%(client)s, floor(extract(epoch FROM now()) / %(window)s)::bigint, 1)
ON CONFLICT (client) DO UPDATE SET
    used = CASE WHEN w.window_start = excluded.window_start THEN w.used + 1 ELSE 1 END,
    window_start = excluded.window_start
WHERE w.window_start <> excluded.window_start OR w.used < %(limit)s
RETURNING used
"""
_PURGE = (
    "DELETE FROM turn_rate_windows WHERE window_start < floor(extract(epoch FROM now()) / %s)::bigint - 1"
)
_TAKE_SLOT = """
INSERT INTO active_turns (turn_id, holder, expires_at)
SELECT %(id)s, %(holder)s, now() + make_interval(secs => %(ttl)s)
WHERE (SELECT count(*) FROM active_turns WHERE holder = %(holder)s AND expires_at >= now()) < %(cap)s
RETURNING turn_id
"""


async def count_turn(db: Database, client: str, *, window: int, limit: int) -> bool:
    """Count one turn against `client`'s current window of `window` seconds.

    Returns:
        True when counted; False when the window already holds `limit` turns (nothing counted).
    """
    async with db.pool.connection() as conn:
        row = await (
            await conn.execute(_COUNT, {"client": client, "window": window, "limit": limit})
        ).fetchone()
        if random.random() < 0.01:  # now and then, forget clients of windows long past
            await conn.execute(_PURGE, (window,))
    return row is not None


async def take_slot(db: Database, turn_id: str, holder: str, *, ttl: float, cap: int) -> bool:
    """Record turn `turn_id` as running for `holder` for `ttl` seconds, if fewer than `cap` do.

    Returns:
        True when the slot was taken; False when `holder` already runs `cap` turns.
    """
    async with db.pool.connection() as conn, conn.transaction():
        # Serialise admissions per holder (across processes) so that count-then-insert is exact.
        await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (SLOT_LOCK_CLASS, holder))
        await conn.execute("DELETE FROM active_turns WHERE holder = %s AND expires_at < now()", (holder,))
        params = {"id": turn_id, "holder": holder, "ttl": ttl, "cap": cap}
        row = await (await conn.execute(_TAKE_SLOT, params)).fetchone()
    return row is not None


async def renew_slot(db: Database, turn_id: str, seconds: float) -> None:
    """Push the slot's expiry `seconds` from now."""
    async with db.pool.connection() as conn:
        await conn.execute(
            "UPDATE active_turns SET expires_at = now() + make_interval(secs => %s) WHERE turn_id = %s",
            (seconds, turn_id),
        )


async def free_slot(db: Database, turn_id: str) -> None:
    """Forget the slot (the turn has ended)."""
    async with db.pool.connection() as conn:
        await conn.execute("DELETE FROM active_turns WHERE turn_id = %s", (turn_id,))
