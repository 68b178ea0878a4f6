"""The last node of every turn: remember it, keep memory bounded, and clear the turn's input.

- The checkpointed `messages` keep only the last `WINDOW_MESSAGES`; older ones are folded into the
  running summary and removed, so the state a thread stores stays the same size however long it is.
- The full transcript, with each answer's sources exactly as returned, goes to `thread_messages`.
- Superseded checkpoints are pruned, so stored checkpoint data does not pile up turn after turn.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig

from chains.memory import make_title, update_summary
from core.db import Database
from graphs.context import ServerContext, TutorServices
from graphs.state import CLEARED_INPUT, TutorState

log = logging.getLogger(__name__)


async def remember(state: TutorState, config: RunnableConfig, *, services: TutorServices) -> dict[str, Any]:
    update: dict[str, Any] = {**CLEARED_INPUT, "passages": []}
    if state.get("error"):
        return update  # a turn that could not run leaves memory as it was
    context = ServerContext.from_config(config)
    meta = {"route": state["route"], "sources": state.get("sources", []), "grounded": state.get("grounded")}
    human = HumanMessage(content=state["message"])
    ai = AIMessage(content=state.get("answer", ""), additional_kwargs=meta)

    window = services.settings.window_messages
    history = state.get("messages", [])
    overflow = max(0, len(history) + 2 - window)
    dropped = history[:overflow]
    if dropped:
        update["summary"] = await update_summary(
            services.chat_model, state.get("summary", ""), dropped, config
        )
    update["messages"] = [RemoveMessage(id=m.id) for m in dropped if m.id] + [human, ai]

    turns = state.get("turns", 0) + 1
    update["turns"] = turns
    title = state.get("title")
    if turns == 1 or not title:
        title = await make_title(services.chat_model, state["message"], state.get("answer", ""), config)
    update["title"] = title

    await save_transcript(services, context, state, title)
    await prune_checkpoints(services, context.thread_id)
    return update


async def save_transcript(
    services: TutorServices, context: ServerContext, state: TutorState, title: str
) -> None:
    """Append the turn's two messages to the thread's transcript (creating the thread row)."""
    sources = json.dumps(state.get("sources", []), ensure_ascii=False)
    async with services.db.pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO threads (thread_id, user_id, title) VALUES (%s, %s, %s)"
            " ON CONFLICT (thread_id) DO UPDATE SET updated_at = now(),"
            " title = coalesce(threads.title, excluded.title)",
            (context.thread_id, context.user_id, title),
        )
        await conn.execute(
            "WITH last AS (SELECT coalesce(max(seq), 0) AS n FROM thread_messages WHERE thread_id = %(t)s)"
            " INSERT INTO thread_messages"
            " (thread_id, seq, role, content, route, sources, grounded, language)"
            " SELECT %(t)s, n + 1, 'user', %(q)s, %(r)s, '[]'::jsonb, NULL::boolean, NULL::text FROM last"
            " UNION ALL"
            " SELECT %(t)s, n + 2, 'assistant', %(a)s, %(r)s, %(s)s::jsonb, %(g)s, %(l)s FROM last",
            {
                "t": context.thread_id,
                "q": state["message"],
                "a": state.get("answer", ""),
                "r": state["route"],
                "s": sources,
                "g": state.get("grounded"),
                "l": state.get("language"),
            },
        )


STORED_BYTES = (
    "SELECT (SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM checkpoints c WHERE thread_id = %(t)s)"
    " + (SELECT coalesce(sum(pg_column_size(b.*)), 0) FROM checkpoint_blobs b WHERE thread_id = %(t)s)"
    " + (SELECT coalesce(sum(pg_column_size(w.*)), 0) FROM checkpoint_writes w WHERE thread_id = %(t)s)"
    " AS checkpoint, (SELECT coalesce(sum(octet_length(content) + octet_length(sources::text)), 0)"
    " FROM thread_messages WHERE thread_id = %(t)s) AS transcript"
)


async def stored_bytes(db: Database, thread_id: str) -> dict[str, int]:
    """Bytes a thread occupies: its checkpoints (rows, blobs, writes) and its transcript."""
    async with db.pool.connection() as conn:
        row = await (await conn.execute(STORED_BYTES, {"t": thread_id})).fetchone()
    assert row is not None
    return {"checkpoint": int(row["checkpoint"]), "transcript": int(row["transcript"])}


async def prune_checkpoints(services: TutorServices, thread_id: str) -> None:
    """Drop all but the latest checkpoint of the thread. Best effort: a prune that races a write
    fails harmlessly and the next turn prunes again."""
    saver = services.checkpointer
    if saver is None or not hasattr(saver, "aprune"):
        return
    try:
        await saver.aprune([thread_id], strategy="keep_latest")
    except Exception as exc:
        log.debug("checkpoint prune of %s skipped: %s", thread_id, exc)
