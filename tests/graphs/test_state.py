"""The graph's state is declared once per role: what is repeated is checked against its source."""

from typing_extensions import get_type_hints

from graphs.state import CLEARED_INPUT, InputState, TurnInput, TurnOutput, TutorState, fresh_output


def test_input_state_has_exactly_the_turn_input_fields() -> None:
    assert set(InputState.__annotations__) == set(TurnInput.model_fields)


def test_tutor_state_holds_every_input_and_output_field() -> None:
    fields = set(get_type_hints(TutorState, include_extras=True))
    assert set(TurnInput.model_fields) <= fields
    assert set(TurnOutput.__annotations__) <= fields


def test_a_turn_clears_every_optional_input_and_keeps_the_message() -> None:
    assert set(CLEARED_INPUT) == set(TurnInput.model_fields) - {"message"}
    assert all(value is None for value in CLEARED_INPUT.values())


def test_a_turn_starts_from_fresh_outputs_but_keeps_title_and_language() -> None:
    start = fresh_output()
    assert set(start) == set(TurnOutput.__annotations__) - {"title", "language"}
    assert start["answer"] == "" and start["sources"] == [] and start["grounded"] is True
    assert start["error"] is None and start["verified_selection"] is None
    start["sources"].append("x")
    assert fresh_output()["sources"] == []  # no list shared between turns
