"""Learner profiles of signed-in readers: the `profiles` table."""

from __future__ import annotations

import json

from core.db import Database
from core.profile import LearnerProfile


async def load(db: Database, user: str | None) -> LearnerProfile | None:
    """The profile `user` saved; None for an anonymous reader or one who never saved a profile."""
    if user is None:
        return None
    async with db.pool.connection() as conn:
        row = await (
            await conn.execute("SELECT profile FROM profiles WHERE user_id = %s", (user,))
        ).fetchone()
    return LearnerProfile.model_validate(row["profile"]) if row else None


async def save(db: Database, user: str, profile: LearnerProfile) -> None:
    """Store `profile` as `user`'s, replacing any earlier one."""
    data = json.dumps(profile.model_dump(mode="json", exclude_none=True))
    async with db.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO profiles (user_id, profile) VALUES (%s, %s::jsonb) ON CONFLICT (user_id)"
            " DO UPDATE SET profile = excluded.profile, updated_at = now()",
            (user, data),
        )
