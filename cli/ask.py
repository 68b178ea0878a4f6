"""`tutor ask`: one turn of the tutor graph, with memory in Postgres."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from core.profile import LearnerProfile
from core.settings import Settings
from graphs.context import run_config
from graphs.tutor import open_tutor


async def run_turn(
    settings: Settings,
    turn: dict[str, Any],
    *,
    thread: str | None = None,
    user: str | None = None,
    profile_file: Path | None = None,
) -> dict[str, Any]:
    """Run one turn and return the graph's output (with the thread id to continue it)."""
    profile = (
        LearnerProfile.model_validate(json.loads(profile_file.read_text(encoding="utf-8")))
        if profile_file
        else None
    )
    thread_id = thread or str(uuid.uuid4())
    inputs = {key: value for key, value in turn.items() if value is not None}
    async with open_tutor(settings) as tutor:
        await tutor.services.retriever.index.require()
        output: dict[str, Any] = await tutor.graph.ainvoke(inputs, run_config(thread_id, user, profile))
    return output
