"""Per-user daily counters of rewrites (personalize, translate): the `usage_counters` table.

Only SQL lives here; what the counters mean is decided by `graphs.rewrite_policy` (the cached
results are in `core.stores.rewrite_cache`).

Counters: a call takes a unit *before* the model is asked, with one statement that either takes it
or finds the day used up, so concurrent requests never overshoot the limit; a call that then fails
gives its unit back (`Reservation.refund`). Days are UTC.

Why a single `INSERT … ON CONFLICT DO UPDATE … WHERE used < limit RETURNING used` is exact under
concurrency (Postgres, READ COMMITTED): concurrent inserts of the same new key wait for the first
one and then take the conflict path; the conflict path locks the row and evaluates `WHERE` against
its latest committed version, so every caller sees the increments of the ones before it. A row
that fails the `WHERE` is not updated and returns nothing: that caller is over the limit.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel

from core.db import Database

_RESERVE = """
INSERT INTO usage_counters AS c (user_id, action, day, used) VALUES (%s, %s, %s, 1)
ON CONFLICT (user_id, action, day) DO UPDATE SET used = c.used + 1 WHERE c.used < %s
RETURNING used
"""
_REFUND = (
    "UPDATE usage_counters SET used = used - 1 WHERE user_id = %s AND action = %s AND day = %s AND used > 0"
)
_USED = "SELECT used FROM usage_counters WHERE user_id = %s AND action = %s AND day = %s"


class QuotaView(BaseModel):
    """What a response reports: today's limit, units used (this call included) and what is left."""

    limit: int
    used: int
    remaining: int

    @classmethod
    def of(cls, limit: int, used: int) -> QuotaView:
        """The view of `used` units out of `limit` (never a negative remainder)."""
        return cls(limit=limit, used=used, remaining=max(limit - used, 0))


def utc_day(now: datetime) -> date:
    """The UTC calendar day of `now`: the day a counter belongs to."""
    return now.astimezone(UTC).date()


def seconds_until_next_day(now: datetime) -> int:
    """Whole seconds (at least 1) until the next UTC midnight, when every counter starts afresh."""
    now = now.astimezone(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return max(1, math.ceil((midnight - now).total_seconds()))


@dataclass
class Reservation:
    """One unit taken from a user's counter for one day; `refund` gives it back (once)."""

    db: Database
    user: str
    action: str
    day: date  # the day the unit was taken from, even if the call ends after midnight
    view: QuotaView
    refunded: bool = False

    async def refund(self) -> None:
        """Give the unit back to its day's counter; a second call does nothing."""
        if self.refunded:
            return
        self.refunded = True
        # Shielded: a request cancelled mid-call must still give its unit back.
        await asyncio.shield(self._refund())

    async def _refund(self) -> None:
        async with self.db.pool.connection() as conn:
            await conn.execute(_REFUND, (self.user, self.action, self.day))


async def reserve(db: Database, user: str, action: str, limit: int, now: datetime) -> Reservation | None:
    """Take one unit of today's `limit` for `action`; None when the day is used up."""
    if limit <= 0:  # the INSERT path would otherwise grant a first unit of a zero quota
        return None
    day = utc_day(now)
    async with db.pool.connection() as conn:
        row = await (await conn.execute(_RESERVE, (user, action, day, limit))).fetchone()
    if row is None:
        return None
    return Reservation(db, user, action, day, QuotaView.of(limit, int(row["used"])))


async def usage(db: Database, user: str, action: str, limit: int, now: datetime) -> QuotaView:
    """Today's counter without touching it."""
    async with db.pool.connection() as conn:
        row = await (await conn.execute(_USED, (user, action, utc_day(now)))).fetchone()
    return QuotaView.of(limit, int(row["used"]) if row else 0)
