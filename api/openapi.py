"""What /openapi.json says about errors and streams, so that it tells the truth.

One table of error statuses (`ERRORS`) feeds every route's `responses=` through `error_responses`,
with the one error body (`ErrorBody`) as their schema. LangServe generates its own route docs; they
are corrected in `tutor_openapi` (installed by `api.tutor_routes`), from the same table.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

REF = "#/components/schemas/{model}"


class ErrorDetail(BaseModel):
    """One problem of a 422: where it is and what is wrong (never the offending value)."""

    loc: list[str] = Field(description='Where: e.g. `["body", "message"]`. Never the value sent.')
    msg: str
    type: str | None


class ErrorInfo(BaseModel):
    """The `error` object of every error response."""

    code: str = Field(
        description="Stable, machine-readable: `unauthorized`, `not_found`, `thread_busy`, `server_busy`, …"
    )
    message: str = Field(description="For people; may change.")
    details: list[ErrorDetail] | None = Field(None, description="422 only: one entry per invalid field.")


class ErrorBody(BaseModel):
    """Every error, from every route, has this shape."""

    error: ErrorInfo


ERRORS: dict[int, str] = {
    400: "Malformed request: a body that cannot be parsed, a bad thread id or config hash.",
    401: "Missing or invalid credentials (one body for every credential problem).",
    404: "No such thread (someone else's looks the same), message or page.",
    409: "Another turn is running on the thread, or a stored precondition is missing.",
    413: "The request body is larger than MAX_BODY_BYTES.",
    422: "The request is not valid; `details` says where.",
    429: "Too many requests: this client's turns per minute or at once (`rate_limited`, `too_many_turns`), "
    "or today's rewrite quota (`quota_exceeded`); try again after `Retry-After` seconds.",
    500: "The server could not complete the request (logged; nothing internal is shown).",
    503: "A dependency (chat model, database) is unavailable, or this worker is busy (`server_busy`: its "
    "turn queue is full or the wait too long); try again after `Retry-After` seconds.",
}
ALWAYS = (413, 500)  # any request can be too large, and any can fail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that can answer `statuses` (plus `ALWAYS`)."""
    return {
        status: {"model": ErrorBody, "description": ERRORS[status]} for status in sorted({*ALWAYS, *statuses})
    }


SSE_RESPONSE: dict[str, Any] = {
    "description": "Server-sent events.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
# LangServe's routes under /tutor: which statuses each kind can answer.
TUTOR_RUN_ERRORS = (400, 401, 404, 409, 422, 503)
TUTOR_SCHEMA_ERRORS = (400,)  # `/c/{config_hash}/…`: a hash that does not decode
TUTOR_STREAMS = ("/stream", "/stream_log", "/stream_events")


def tutor_openapi(app: FastAPI, prefix: str) -> dict[str, Any]:
    """The app's OpenAPI schema with LangServe's route docs corrected.

    The app's schema with LangServe's route docs corrected: our error responses, streams as
    `text/event-stream`, and no `config_hash` query parameter (the routes that answer ignore it;
    only the `/c/{config_hash}/` path form reads one).
    """
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes, tags=app.openapi_tags)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template=REF)
    components.update(error_schema.pop("$defs", {}))
    components["ErrorBody"] = error_schema
    for path, operations in schema["paths"].items():
        if not path.startswith(prefix + "/"):
            continue
        for method, operation in operations.items():
            _describe_tutor_operation(path, method, operation)
    app.openapi_schema = schema
    return schema


def _describe_tutor_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    params = [p for p in operation.get("parameters", []) if p.get("in") != "query"]
    if params:
        operation["parameters"] = params
    else:
        operation.pop("parameters", None)
    statuses = TUTOR_RUN_ERRORS if method == "post" else TUTOR_SCHEMA_ERRORS if params else ()
    responses = operation["responses"]
    responses.pop("422", None)  # FastAPI's default body, not ours
    for status in sorted({*ALWAYS, *statuses}):
        responses[str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}},
        }
    if path.endswith(TUTOR_STREAMS):
        responses["200"] = SSE_RESPONSE
