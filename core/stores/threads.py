"""Threads and their transcripts: the `threads` and `thread_messages` tables, leases included.

A thread's row holds its owner (NULL for an anonymous thread), title, times, and the lease of the
turn running on it (`busy_token`, `busy_until`); `thread_messages` holds every message with the
sources of each answer exactly as returned. Who may see a thread, and what a missing one answers,
is `api.thread_access`' business; this module returns rows or None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from core.db import Database

_APPEND_TURN = (
    "WITH last AS (SELECT coalesce(max(seq), 0) AS n FROM thread_messages WHERE thread_id = %(t)s)"
    " INSERT INTO thread_messages"
    " (thread_id, seq, role, content, route, sources, grounded, language)"
    " SELECT %(t)s, n + 1, 'user', %(q)s, %(r)s, '[]'::jsonb, NULL::boolean, NULL::text FROM last"
    " UNION ALL"
    " SELECT %(t)s, n + 2, 'assistant', %(a)s, %(r)s, %(s)s::jsonb, %(g)s, %(l)s FROM last"
)
_STORED_BYTES = (
    "SELECT (SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM checkpoints c WHERE thread_id = %(t)s)"
    " + (SELECT coalesce(sum(pg_column_size(b.*)), 0) FROM checkpoint_blobs b WHERE thread_id = %(t)s)"
    " + (SELECT coalesce(sum(pg_column_size(w.*)), 0) FROM checkpoint_writes w WHERE thread_id = %(t)s)"
    " AS checkpoint, (SELECT coalesce(sum(octet_length(content) + octet_length(sources::text)), 0)"
    " FROM thread_messages WHERE thread_id = %(t)s) AS transcript"
)


async def create(db: Database, thread_id: str, user: str | None) -> bool:
    """Create the thread's row for `user` unless it exists; True when this call created it."""
    async with db.pool.connection() as conn:
        inserted = await (
            await conn.execute(
                "INSERT INTO threads (thread_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING"
                " RETURNING thread_id",
                (thread_id, user),
            )
        ).fetchone()
    return inserted is not None


async def get(db: Database, thread_id: str) -> dict[str, Any] | None:
    """The thread's row (id, owner `user_id`, title, times), or None when there is none."""
    async with db.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT thread_id, user_id, title, created_at, updated_at FROM threads WHERE thread_id = %s",
                (thread_id,),
            )
        ).fetchone()
    return dict(row) if row else None


async def list_for_user(db: Database, user: str, limit: int, offset: int) -> list[dict[str, Any]]:
    """A page of `user`'s threads with their message counts, most recently active first."""
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


async def messages(db: Database, thread_id: str) -> list[dict[str, Any]]:
    """The thread's transcript, in order."""
    async with db.pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT seq, role, content, route, sources, grounded, language, created_at"
                " FROM thread_messages WHERE thread_id = %s ORDER BY seq",
                (thread_id,),
            )
        ).fetchall()
    return [dict(row) for row in rows]


async def has_messages(db: Database, thread_id: str) -> bool:
    """Whether the thread's transcript holds at least one message."""
    async with db.pool.connection() as conn:
        row = await (
            await conn.execute("SELECT 1 FROM thread_messages WHERE thread_id = %s LIMIT 1", (thread_id,))
        ).fetchone()
    return row is not None


async def message_role(db: Database, thread_id: str, seq: int) -> str | None:
    """The role ("user" or "assistant") of message `seq`; None when the thread has no such message."""
    async with db.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT role FROM thread_messages WHERE thread_id = %s AND seq = %s", (thread_id, seq)
            )
        ).fetchone()
    return str(row["role"]) if row else None


async def rename(db: Database, thread_id: str, title: str) -> None:
    """Set the thread's title."""
    async with db.pool.connection() as conn:
        await conn.execute(
            "UPDATE threads SET title = %s, updated_at = now() WHERE thread_id = %s", (title, thread_id)
        )


async def delete(db: Database, thread_id: str) -> None:
    """Delete the thread's row, and with it (by cascade) its transcript and feedback."""
    async with db.pool.connection() as conn:
        await conn.execute("DELETE FROM threads WHERE thread_id = %s", (thread_id,))


async def append_turn(
    db: Database,
    thread_id: str,
    user: str | None,
    title: str,
    *,
    question: str,
    answer: str,
    route: str,
    sources: Sequence[Mapping[str, object]],
    grounded: bool | None,
    language: str | None,
) -> None:
    """Append a turn's two messages to the transcript, creating the thread's row if need be.

    The row's title is set only if it has none (a reader's rename is kept).
    """
    async with db.pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO threads (thread_id, user_id, title) VALUES (%s, %s, %s)"
            " ON CONFLICT (thread_id) DO UPDATE SET updated_at = now(),"
            " title = coalesce(threads.title, excluded.title)",
            (thread_id, user, title),
        )
        await conn.execute(
            _APPEND_TURN,
            {
                "t": thread_id,
                "q": question,
                "a": answer,
                "r": route,
                "s": json.dumps(list(sources), ensure_ascii=False),
                "g": grounded,
                "l": language,
            },
        )


async def stored_bytes(db: Database, thread_id: str) -> dict[str, int]:
    """Bytes a thread occupies: its checkpoints (rows, blobs, writes) and its transcript."""
    async with db.pool.connection() as conn:
        row = await (await conn.execute(_STORED_BYTES, {"t": thread_id})).fetchone()
    assert row is not None
    return {"checkpoint": int(row["checkpoint"]), "transcript": int(row["transcript"])}


async def take_lease(db: Database, thread_id: str, token: str, seconds: float) -> bool:
    """Mark the thread busy under `token` for `seconds`, unless another unexpired lease holds it.

    Returns:
        True when the lease was taken.
    """
    async with db.pool.connection() as conn:
        row = await (
            await conn.execute(
                "UPDATE threads SET busy_token = %s, busy_until = now() + make_interval(secs => %s)"
                " WHERE thread_id = %s AND (busy_until IS NULL OR busy_until < now())"
                " RETURNING thread_id",
                (token, seconds, thread_id),
            )
        ).fetchone()
    return row is not None


async def renew_lease(db: Database, thread_id: str, token: str, seconds: float) -> bool:
    """Push the expiry of the lease held under `token` `seconds` from now.

    Returns:
        False when `token` no longer holds the thread (its lease expired and was taken).
    """
    async with db.pool.connection() as conn:
        row = await (
            await conn.execute(
                "UPDATE threads SET busy_until = now() + make_interval(secs => %s)"
                " WHERE thread_id = %s AND busy_token = %s RETURNING thread_id",
                (seconds, thread_id, token),
            )
        ).fetchone()
    return row is not None


async def release_lease(db: Database, thread_id: str, token: str) -> None:
    """Free the thread, if `token` still holds it."""
    async with db.pool.connection() as conn:
        await conn.execute(
            "UPDATE threads SET busy_token = NULL, busy_until = NULL"
            " WHERE thread_id = %s AND busy_token = %s",
            (thread_id, token),
        )
