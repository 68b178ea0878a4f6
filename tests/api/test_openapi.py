"""/openapi.json tells the truth: schemathesis generates requests from the live app's own schema,
valid and invalid, with and without a token, and checks each answer against that schema.

Run in a worker thread (the live uvicorn shares this test's event loop). Each failing case is
recorded rather than raised, so hypothesis does not spend the time budget shrinking it, and the
test ends with one list of everything that failed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

# schemathesis' `not_a_server_error` also counts 503, which is this API's honest answer when no chat
# model is configured (`needs_chat_model`) and is documented: server errors are counted below instead.
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = {GenerationMode.POSITIVE: 4, GenerationMode.NEGATIVE: 3}  # per operation, per mode


@dataclass
class Fuzzing:
    cases: int = 0
    server_errors: int = 0
    failures: list[str] = field(default_factory=list)


def fuzz_operation(operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str]) -> Fuzzing:
    result = Fuzzing()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        result.cases += 1
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        if response.status_code >= 500 and response.status_code != 503:
            result.server_errors += 1
            result.failures.append(
                f"{case.operation.label}: {response.status_code} for {case.as_curl_command()}"
            )
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as exc:
            result.failures.append(f"{case.operation.label} [{mode.value}]: {exc}"[:1500])

    with contextlib.suppress(Unsatisfiable):  # e.g. an operation with nothing to make invalid
        run()
    return result


def fuzz(schema_url: str, base_url: str, headers: dict[str, str]) -> Fuzzing:
    schema = schemathesis.openapi.from_url(schema_url)
    total = Fuzzing()
    for found in schema.get_all_operations():
        operation = found.ok()
        for mode in EXAMPLES:
            if mode is GenerationMode.NEGATIVE and (
                operation.path_parameters or not (operation.query or operation.body)
            ):
                # Nothing to make invalid (no parameters), or every string is a valid thread id or
                # config hash to the schema: hypothesis spends ~20 s per operation failing to invent
                # an invalid one. Bodies of these routes are covered by tests/api/test_bad_input.py.
                continue
            result = fuzz_operation(operation, mode, base_url, headers)
            total.cases += result.cases
            total.server_errors += result.server_errors
            total.failures += result.failures
    return total


@pytest.mark.parametrize("signed_in", [True, False], ids=["token", "anonymous"])
async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    make_api: Any, signed_in: bool
) -> None:
    api = await make_api()
    headers = api.headers("fuzz-reader") if signed_in else {}
    started = time.monotonic()
    result = await asyncio.to_thread(fuzz, f"{api.url}/openapi.json", api.url, headers)
    elapsed = time.monotonic() - started
    print(f"schemathesis: {result.cases} cases in {elapsed:.0f}s, {len(result.failures)} failures")
    assert result.cases > 100
    assert result.server_errors == 0
    assert result.failures == [], "\n\n".join(result.failures[:5])


async def test_streams_and_errors_are_documented_as_sent(make_api: Any) -> None:
    api = await make_api()
    schema = (await api.client().get("/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/chat/stream", "/tutor/stream", "/tutor/stream_log", "/tutor/stream_events"):
        assert list(paths[path]["post"]["responses"]["200"]["content"]) == ["text/event-stream"], path
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"413", "500"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")) and path != "/health":
                    assert response["content"]["application/json"]["schema"] == error_ref, (path, status)
            names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            assert "config_hash" not in names, path  # LangServe's routes do not read it from the query
    assert "HTTPValidationError" not in str(paths)


async def test_the_documented_error_body_is_what_is_sent(make_api: Any) -> None:
    api = await make_api()
    client: httpx.AsyncClient = api.client()
    schema = (await client.get("/openapi.json")).json()
    body_schema = schema["components"]["schemas"]["ErrorBody"]
    bodies = [
        (await client.post("/chat", json={})).json(),
        (await client.get("/threads")).json(),
        (await client.get("/threads/no-such-thread")).json(),
    ]
    for body in bodies:
        assert set(body) == set(body_schema["required"]) == {"error"}
        assert {"code", "message"} <= set(body["error"])


async def test_turn_routes_document_the_limits_429(make_api: Any) -> None:
    """`/chat` and `/chat/stream` answer 429 (`rate_limited`, `too_many_turns`, `quota_exceeded`)."""
    api = await make_api()
    paths = (await api.client().get("/openapi.json")).json()["paths"]
    for path in ("/chat", "/chat/stream"):
        documented = paths[path]["post"]["responses"]
        assert "429" in documented and "Retry-After" in documented["429"]["description"], path
