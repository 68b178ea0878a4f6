"""The last node of every turn: remember it, keep memory bounded, and clear the turn's input.

- The checkpointed `messages` keep only the last `WINDOW_MESSAGES`; older ones are folded into the
  running summary and removed, so the state a thread stores stays the same size however long it is.
- The full transcript, with each answer's sources exactly as returned, goes to `thread_messages`
  (`core.stores.threads`).
- Superseded checkpoints are pruned, so stored checkpoint data does not pile up turn after turn.
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig

from chains.memory import make_title, update_summary
from core.stores import threads
from graphs.context import ServerContext, TutorServices
from graphs.state import CLEARED_INPUT, TutorState

log = logging.getLogger(__name__)


async def remember(state: TutorState, config: RunnableConfig, *, services: TutorServices) -> dict[str, Any]:
    """Store the turn, fold old messages into the summary, title the thread, clear the turn's input."""
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
            services.quiet_model, state.get("summary", ""), dropped, config
        )
    update["messages"] = [RemoveMessage(id=m.id) for m in dropped if m.id] + [human, ai]

    turns = state.get("turns", 0) + 1
    update["turns"] = turns
    title = state.get("title")
    if turns == 1 or not title:
        title = await make_title(services.quiet_model, state["message"], state.get("answer", ""), config)
    update["title"] = title

    await threads.append_turn(
        services.db,
        context.thread_id,
        context.user_id,
        title,
        question=state["message"],
        answer=state.get("answer", ""),
        route=state["route"],
        sources=state.get("sources", []),
        grounded=state.get("grounded"),
        language=state.get("language"),
    )
    if not context.new_thread:  # a thread's first turn has nothing to prune: 4 statements saved
        await prune_checkpoints(services, context.thread_id)
    return update


async def prune_checkpoints(services: TutorServices, thread_id: str) -> None:
    """Drop all but the latest checkpoint of the thread.

    Best effort: a prune that races a write fails harmlessly and the next turn prunes again.
    """
    saver = services.checkpointer
    if saver is None or not hasattr(saver, "aprune"):
        return
    try:
        await saver.aprune([thread_id], strategy="keep_latest")
    except Exception as exc:
        log.debug("checkpoint prune of %s skipped: %s", thread_id, exc)
