"""The HTTP service: a FastAPI app around the tutor graph.

Offers `api.app.create_app` / `served_app` (the factory uvicorn runs): LangServe at `/tutor`, the
widget's `/chat` and `/chat/stream` (SSE), threads, profile, personalize/translate, health and `/`.
Authentication, per-client limits, thread leases and the JSON error shape live here; the graph knows
nothing about HTTP. See docs/design.md, "The HTTP surface".
"""
