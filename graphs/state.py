"""What flows through the tutor graph: the client's input, the output, and the internal state.

The input schema is deliberately narrow: exactly the fields a client may set (docs/design.md, "The
graph"). Who the user is, which thread this is and the learner profile are server-set and come from
the run's config (see `graphs.context`), never from here.

Each field is declared once per role: `TurnInput` (pydantic: validation, limits, JSON schema),
`TurnOutput` (what a client gets back), and the graph's own `MemoryState` and `WorkState`.
`TutorState` inherits them all. The one exception is `InputState`, the graph's view of `TurnInput`:
LangGraph state must be a `typing_extensions.TypedDict` and `TurnInput` must stay a pydantic model
(constraints, `extra="forbid"`, the schema hook, `ChatRequest(TurnInput)`), and neither can inherit
from the other; a TypedDict built at run time from `TurnInput.model_fields` would be invisible to
mypy. So `InputState` repeats the field names, and `tests/graphs/test_state.py` fails when the two
drift. The lists nodes need (`CLEARED_INPUT`, `fresh_output`) are computed from the schemas.
"""

from __future__ import annotations

from copy import copy
from typing import Annotated, Any, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict  # typing.TypedDict breaks LangServe's add_routes on 3.11

from chains.citations import Source

Mode = Literal["auto", "ask", "selection", "personalize", "translate"]
Route = Literal["ask", "selection", "personalize", "translate"]
BCP47 = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
# Text a client sends, minus the NUL character: Postgres refuses it in a text column, so it would
# fail only when the turn is stored — after the model was paid for. As a pattern it is also in the
# JSON schema, so clients (and schema-driven test tools) know. Use it for every client text field.
NulFreeStr = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]


def _optional_as_omittable(schema: dict[str, Any]) -> None:
    """Draw optional fields as plain omittable ones in the JSON schema.

    An optional field is one a client may leave out (not `required`), drawn as its
    plain type with its limits, without `anyOf [..., {type: null}]` and without a `null` default.

    Why: LangServe's playground builds its form from this schema and cannot draw a `null` branch
    (`Unknown type: {"type":"null"}`, a blank page), and a `null` default fails its own `string`
    check. Validation is unchanged: an explicit `null` is still accepted and means "not given".
    """
    for field in schema.get("properties", {}).values():
        branches = field.get("anyOf", [])
        if {"type": "null"} in branches and len(branches) == 2:
            field.update(next(branch for branch in branches if branch != {"type": "null"}))
            del field["anyOf"]
            if field.get("default", ...) is None:
                del field["default"]


class TurnInput(BaseModel):
    """One reader turn, as a client sends it. Validated (and size-capped) at the start of the run."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_optional_as_omittable)

    message: NulFreeStr = Field(
        min_length=1, max_length=8000, description="The reader's question or request."
    )
    mode: Mode = Field("auto", description="Force a route; `auto` lets the tutor decide.")
    selected_text: NulFreeStr | None = Field(
        None, max_length=20_000, description="Text the reader highlighted: answer from it only."
    )
    page: NulFreeStr | None = Field(
        None, max_length=2_000, description="Doc path or URL of the page the reader is on."
    )
    target_language: str | None = Field(
        None, pattern=BCP47, max_length=35, description="BCP-47 language for translation, e.g. `ur`."
    )
    content: NulFreeStr | None = Field(
        None,
        max_length=100_000,
        description="Text to personalize or translate (else the selection, "
        "the last answer, or the page's chapter).",
    )


class TurnError(TypedDict):
    """Why a turn could not run, instead of an answer."""

    code: str  # e.g. "needs_chat_model", "invalid_input"
    message: str


class TurnOutput(TypedDict):
    """What a client gets back."""

    answer: str
    route: Route
    sources: list[Source]
    language: str | None  # BCP-47 of the answer; None when `error` is set instead
    grounded: bool  # False when the tutor declined for lack of support in the book
    thread_id: str
    verified_selection: bool | None  # selection route: does the highlighted text occur in the book?
    error: TurnError | None  # set instead of an answer when the route cannot run (e.g. no chat model)
    title: str | None  # the thread's title


class InputState(TypedDict, total=False):
    """This turn's input as the graph keeps it: `TurnInput`'s fields (a test keeps them equal).

    Optional fields are cleared to None when the turn ends (`CLEARED_INPUT`).
    """

    message: str
    mode: Mode | None
    selected_text: str | None
    page: str | None
    target_language: str | None
    content: str | None


class MemoryState(TypedDict, total=False):
    """What a thread keeps across turns (bounded: see graphs/nodes/memory.py)."""

    messages: Annotated[list[AnyMessage], add_messages]  # the last few turns, what the model sees
    summary: str  # running summary of turns that left the window
    pinned_selection: str | None  # the last selection: follow-ups in selection mode stay on it
    turns: int  # completed turns in this thread


class WorkState(TypedDict, total=False):
    """This turn's intermediate results (`route` is also an output)."""

    query: str  # standalone (English) search query for the ask route
    passages: list[dict[str, Any]]  # retrieved passages (cleared when the turn ends)


class TutorState(InputState, MemoryState, WorkState, TurnOutput, total=False):
    """Everything the graph keeps: input, memory, this turn's work and the output.

    Input fields are cleared at the end of each turn, so a follow-up never inherits the previous
    turn's selection or content by accident.
    """


# Optional input fields, set to None when a turn ends (the next turn always brings a `message`).
CLEARED_INPUT: dict[str, None] = {
    name: None for name, field in TurnInput.model_fields.items() if not field.is_required()
}
# Outputs that carry over into the next turn until a node sets them: the thread's title and the
# language of the conversation so far. Every other output starts each turn afresh.
CARRIED_OUTPUT = frozenset({"title", "language"})
_OUTPUT_START: dict[str, Any] = {"answer": "", "sources": [], "grounded": True}  # else None


def fresh_output() -> dict[str, Any]:
    """The outputs a turn starts from, for every `TurnOutput` field except `CARRIED_OUTPUT`."""
    return {
        name: copy(_OUTPUT_START.get(name))
        for name in TurnOutput.__annotations__
        if name not in CARRIED_OUTPUT
    }
