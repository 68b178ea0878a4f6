"""One error shape for every route: `{"error": {"code", "message"}}` with an honest status code.

Handlers are installed for our own `ApiError`, for FastAPI/Starlette's HTTP and validation errors
(LangServe's included) and, last, for anything unexpected: that one is logged with its traceback and
answered with a 500 that says nothing about the inside. A client never sees a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from qdrant_client.http.exceptions import ResponseHandlingException
from starlette.exceptions import HTTPException

from core.db import DatabaseUnavailable, is_database_unavailable
from core.providers import blocked_answer, is_model_error
from core.vector_backends import VectorStoreUnavailable
from graphs.rewrite_policy import RewriteRefused

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


# The status of each refusal of the rewrite policy (graphs.rewrite_policy), whichever route met it.
REFUSAL_STATUS = {
    "needs_chat_model": 503,
    "login_required": 401,
    "profile_required": 409,  # the body is fine; the stored state is missing (PUT /profile fixes it)
    "quota_exceeded": 429,
    "no_subject": 422,
    "not_found": 404,
}


class ApiError(Exception):
    """An error a client should see, as it should see it."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def not_found(what: str = "thread") -> ApiError:
    """A 404 `not_found` for `what`."""
    # Someone else's thread and a thread that never existed must look the same.
    return ApiError(404, "not_found", f"No such {what}.")


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON error shape `{"error": {"code", "message", ...}}`."""
    return {"error": {"code": code, "message": message, **extra}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A JSON response in the error shape with `status` and any extra headers."""
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def validation_details(errors: Any) -> list[dict[str, Any]]:
    """Where and what, never the offending value (it may be a reader's selection or a token).

    Errors are pydantic's dicts, except that LangServe raises some as bare strings
    (`RequestValidationError(errors=["Invalid JSON body"])`): those become a detail about the body.
    """
    details: list[dict[str, Any]] = []
    for error in errors:
        if not isinstance(error, dict):
            details.append({"loc": ["body"], "msg": str(error), "type": "invalid_body"})
            continue
        details.append(
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": error.get("msg", ""),
                "type": error.get("type"),
            }
        )
    return details


def model_unavailable() -> ApiError:
    """The chat model did not answer (after the SDK's retries)."""
    return ApiError(503, "model_unavailable", "The chat model did not answer; try again shortly.")


def model_failure(exc: BaseException) -> ApiError | None:
    """What the client is told when the chat model failed (whichever provider), else None.

    None when `exc` is not a model failure. A safety block is not an outage: asking again gives the same.
    """
    if blocked_answer(exc) is not None:
        message = "The model's safety filter withheld this answer; try asking in other words."
        return ApiError(422, "answer_blocked", message)
    return model_unavailable() if is_model_error(exc) else None


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def refusal_error(exc: RewriteRefused) -> ApiError:
    """A policy refusal as the client sees it (status from REFUSAL_STATUS, Retry-After, challenge)."""
    status = REFUSAL_STATUS.get(exc.code, 422)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return ApiError(status, exc.code, exc.message, headers=headers or None)


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RewriteRefused)
    return await _api_error(request, refusal_error(exc))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _CODES.get(exc.status_code, "error")
    if exc.status_code == 422 and isinstance(exc.detail, list):
        return error_response(422, code, "The request is not valid.", details=validation_details(exc.detail))
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").capitalize() + "."
    if exc.status_code >= 500:
        message = "The server could not complete the request."
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(
        422, "invalid_request", "The request is not valid.", details=validation_details(exc.errors())
    )


def dependency_unavailable(exc: BaseException) -> ApiError | None:
    """A 503 for errors meaning Postgres or Qdrant cannot be reached right now, else None.

    Such errors (pool timeout, lost or refused connection) are ones a client may retry; anything
    else is a bug (500). Routes get it from `_dependency_error`, streams as their `error` event.
    """
    if is_database_unavailable(exc):
        message = "The database is not reachable right now; try again in a few seconds."
        return ApiError(503, "database_unavailable", message, headers={"Retry-After": "2"})
    # qdrant-client: no answer (refused, timed out); pgvector: its read pool lost Postgres.
    if isinstance(exc, ResponseHandlingException | VectorStoreUnavailable):
        message = "The search index is not reachable right now; try again in a few seconds."
        return ApiError(503, "vector_store_unavailable", message, headers={"Retry-After": "2"})
    return None


async def _dependency_error(request: Request, exc: Exception) -> JSONResponse:
    unavailable = dependency_unavailable(exc)
    if unavailable is None:
        return await _unexpected(request, exc)
    log.warning("%s on %s %s: %s", unavailable.code, request.method, request.url.path, type(exc).__name__)
    return error_response(unavailable.status, unavailable.code, unavailable.message, unavailable.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if (failure := model_failure(exc)) is not None:  # e.g. LangServe's /invoke: no route of ours catches it
        log.warning("chat model failed on %s: %s", request.url.path, type(exc).__name__)
        return error_response(failure.status, failure.code, failure.message)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "The server could not complete the request.")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error the app can raise in the error shape, never with a traceback."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RewriteRefused, _refused)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for dependency_error in (
        psycopg.OperationalError,
        DatabaseUnavailable,
        ResponseHandlingException,
        VectorStoreUnavailable,
    ):
        app.add_exception_handler(dependency_error, _dependency_error)  # PoolTimeout included
    app.add_exception_handler(Exception, _unexpected)
