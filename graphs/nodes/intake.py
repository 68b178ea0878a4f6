"""The first node of every turn: validate the input and decide the route."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from pydantic import ValidationError

from chains.classifier import classify
from graphs.context import ServerContext, TutorServices
from graphs.state import Route, TurnInput, TutorState, fresh_output


class InvalidTurn(ValueError):
    """The turn's input breaks the input schema (the API answers 422 before this can happen)."""


def read_input(state: TutorState) -> TurnInput:
    """This turn's input, validated against the narrow input schema."""
    fields = {name: state.get(name) for name in TurnInput.model_fields if state.get(name) is not None}
    try:
        return TurnInput.model_validate(fields)
    except ValidationError as exc:
        raise InvalidTurn(f"invalid turn input: {exc.errors(include_url=False)}") from exc


async def intake(state: TutorState, config: RunnableConfig, *, services: TutorServices) -> dict[str, Any]:
    """Validate the turn's input and pick its route.

    An explicit mode wins; a selection with `auto` means selection; else the classifier
    (one call at most; it sees only the message; without a chat model always ask).
    """
    turn = read_input(state)
    context = ServerContext.from_config(config)
    route: Route
    if turn.mode != "auto":
        route = turn.mode
    elif turn.selected_text:
        route = "selection"
    else:
        route = await classify(services.quiet_model, turn.message, config)
    # Reset this turn's outputs: the state still holds the previous turn's.
    return {**fresh_output(), "route": route, "thread_id": context.thread_id, "passages": []}


def route_turn(state: TutorState) -> Literal["condense", "selection", "personalize", "translate"]:
    """The node that handles the route chosen by `intake` (ask starts with query condensation)."""
    route = state["route"]
    return "condense" if route == "ask" else route
