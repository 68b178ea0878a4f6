"""The tutor's state machine.

    START → intake ─┬─ condense → retrieve → answer ─┐
                    ├─ selection ────────────────────┤
                    ├─ personalize ──────────────────┼─ remember → END
                    └─ translate ────────────────────┘

`intake` validates the input and picks the route (explicit mode, selection, or the classifier);
`remember` stores the turn and keeps memory bounded. Knows nothing about HTTP: LangServe, `langgraph
dev`, the CLI and the tests all drive this same graph.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graphs.context import TutorServices
from graphs.nodes import ask, intake, remember, rewrite, selection
from graphs.state import TurnInput, TurnOutput, TutorState


def build_graph(services: TutorServices, checkpointer: Any = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled graph, its nodes bound to `services`. `checkpointer` gives it memory."""
    services.checkpointer = checkpointer
    bind = partial  # each node receives the services as a keyword argument
    graph = StateGraph(TutorState, input_schema=TurnInput, output_schema=TurnOutput)
    graph.add_node("intake", bind(intake.intake, services=services))
    graph.add_node("condense", bind(ask.condense_query, services=services))
    graph.add_node("retrieve", bind(ask.retrieve, services=services))
    graph.add_node("answer", bind(ask.answer, services=services))
    graph.add_node("selection", bind(selection.answer_selection, services=services))
    graph.add_node("personalize", bind(rewrite.personalize, services=services))
    graph.add_node("translate", bind(rewrite.translate, services=services))
    graph.add_node("remember", bind(remember.remember, services=services))

    graph.add_edge(START, "intake")
    graph.add_conditional_edges("intake", intake.route_turn)
    graph.add_edge("condense", "retrieve")
    graph.add_edge("retrieve", "answer")
    for last in ("answer", "selection", "personalize", "translate"):
        graph.add_edge(last, "remember")
    graph.add_edge("remember", END)
    return graph.compile(checkpointer=checkpointer, name="tutor")
