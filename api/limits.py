"""Limits on reader turns, so nobody can drive the answer model as fast as they can send requests.

- Anonymous turns are counted per client address in fixed windows (ANONYMOUS_TURN_LIMIT per
  ANONYMOUS_TURN_WINDOW_SECONDS); signed-in readers are not (their rewrites have daily quotas).
- Turns running at once are capped per holder: a signed-in reader by their `sub`
  (CONCURRENT_TURNS_PER_USER), an anonymous one by client address
  (CONCURRENT_TURNS_PER_ANONYMOUS_CLIENT — high, since a whole class may share one school NAT).
Both answer 429 with Retry-After, before any thread is touched or model called. Both live in
Postgres (`core.stores.turn_limits`), so they hold across workers and replicas; the window uses the
database's clock.

The client address is the socket peer, unless TRUSTED_PROXY_HEADER names a header your proxies set
(e.g. X-Forwarded-For). Then the address is the TRUSTED_PROXY_HOPS-th entry from the right of that
header: each proxy appends the address it received the request from, so the rightmost entries are
written by your own proxies and anything further left came from the client and may be forged. A
request whose header has fewer entries than that did not come through your proxies: its socket
peer is used.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from dataclasses import dataclass

from starlette.requests import Request

from api.errors import ApiError
from core.db import Database
from core.settings import Settings
from core.stores import turn_limits

BUSY_RETRY_SECONDS = 5


def client_address(request: Request, settings: Settings) -> str:
    """Who is calling, for per-client limits (the rule is in the module docstring)."""
    if settings.trusted_proxy_header:
        values = request.headers.getlist(settings.trusted_proxy_header)
        hops = [hop.strip() for value in values for hop in value.split(",") if hop.strip()]
        if len(hops) >= settings.trusted_proxy_hops:
            return hops[-settings.trusted_proxy_hops]
    return request.client.host if request.client else "unknown"


@dataclass
class TurnSlot:
    """One running turn counted against its holder; `release` (idempotent) frees it."""

    db: Database | None  # None: no cap configured, nothing to release
    turn_id: str = ""
    held: bool = False

    async def release(self) -> None:
        """Free the slot (shielded from cancellation); a second call does nothing."""
        if self.held and self.db is not None:
            self.held = False
            # Shielded: a turn cancelled because its client left must still free its slot.
            await asyncio.shield(turn_limits.free_slot(self.db, self.turn_id))

    async def renew(self, seconds: float) -> None:
        """Keep the slot for `seconds` more (the thread lease's heartbeat calls this).

        A running turn stays counted however long it runs; a crashed process's slots expire within
        a lease.
        """
        if self.held and self.db is not None:
            await turn_limits.renew_slot(self.db, self.turn_id, seconds)


async def admit_turn(db: Database, settings: Settings, *, user: str | None, client: str) -> TurnSlot:
    """Count an anonymous turn against its client's window, then take a concurrent-turn slot.

    429 when either is used up. The caller releases the slot when the turn ends.
    """
    if user is None:
        await _count_anonymous(db, settings, client)
    holder, cap = (
        (f"user:{user}", settings.concurrent_turns_per_user)
        if user is not None
        else (f"ip:{client}", settings.concurrent_turns_per_anonymous_client)
    )
    if cap <= 0:  # no cap configured
        return TurnSlot(None)
    slot = TurnSlot(db, str(uuid.uuid4()))
    if not await turn_limits.take_slot(db, slot.turn_id, holder, ttl=settings.turn_lease_seconds, cap=cap):
        raise ApiError(
            429,
            "too_many_turns",
            f"At most {cap} turns may run at once; try again when one has finished.",
            headers={"Retry-After": str(BUSY_RETRY_SECONDS)},
        )
    slot.held = True
    return slot


async def _count_anonymous(db: Database, settings: Settings, client: str) -> None:
    limit, window = settings.anonymous_turn_limit, settings.anonymous_turn_window_seconds
    if limit <= 0:  # no limit configured
        return
    if not await turn_limits.count_turn(db, client, window=window, limit=limit):
        retry_after = max(1, math.ceil(window - time.time() % window))
        raise ApiError(
            429,
            "rate_limited",
            f"Too many questions from this address: at most {limit} every {window} seconds without "
            "signing in. Try again shortly, or sign in.",
            headers={"Retry-After": str(retry_after)},
        )
