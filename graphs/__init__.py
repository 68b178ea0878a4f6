"""The tutor's LangGraph state machine: state schemas, nodes, `build_graph()` and the rewrite policy.

Offers `graphs.graph.build_graph`, `graphs.state` (`TurnInput`, `TurnOutput`, `TutorState`),
`graphs.context` (services and the server-set run context) and `graphs.rewrite_policy` (who may
personalize or translate). Knows nothing about HTTP; imports `chains` and `core`.
"""
