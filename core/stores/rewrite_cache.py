"""Cached rewrite results (personalize, translate): the `rewrite_cache` table.

What a key is made of, and when a cached result may be served, is `graphs.rewrite_policy`'s call.
"""

from __future__ import annotations

import json

from core.db import Database

_CACHED = "SELECT result FROM rewrite_cache WHERE cache_key = %s"
_STORE = (
    "INSERT INTO rewrite_cache (cache_key, action, result) VALUES (%s, %s, %s::jsonb)"
    " ON CONFLICT (cache_key) DO NOTHING"
)


async def cached(db: Database, key: str) -> str | None:
    """The result stored under `key`, or None when there is none."""
    async with db.pool.connection() as conn:
        row = await (await conn.execute(_CACHED, (key,))).fetchone()
    return str(row["result"]["result"]) if row else None


async def store(db: Database, key: str, action: str, result: str) -> None:
    """Keep `result` under `key` (the first result stored for a key stays)."""
    async with db.pool.connection() as conn:
        await conn.execute(_STORE, (key, action, json.dumps({"result": result})))
