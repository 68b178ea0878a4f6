"""Readers' ratings of answers: the `feedback` table."""

from __future__ import annotations

from core.db import Database


async def rate(db: Database, thread_id: str, seq: int, user: str, rating: int, comment: str | None) -> None:
    """Record `user`'s rating (+1 or -1) of message `seq`, replacing an earlier rating of it."""
    async with db.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO feedback (thread_id, seq, user_id, rating, comment) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (thread_id, seq) DO UPDATE SET rating = excluded.rating,"
            " comment = excluded.comment, user_id = excluded.user_id, created_at = now()",
            (thread_id, seq, user, rating, comment),
        )
