"""One error shape, honest status codes, no tracebacks, no secrets in logs."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

QUESTION = {"message": "What does a ROS 2 topic do?"}


async def test_bodies_above_the_limit_are_413(make_api: Any) -> None:
    api = await make_api(max_body_bytes=4096)
    client = api.client()
    response = await client.post("/chat", json={"message": "x" * 5000})
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

    async def chunks() -> Any:  # no Content-Length: the limit counts what arrives
        for _ in range(10):
            yield b" " * 1000

    response = await client.post("/chat", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    response = await client.post("/tutor/invoke", json={"input": {"message": "x" * 5000}})
    assert response.status_code == 413


async def test_validation_errors_name_the_field_not_the_value(make_api: Any) -> None:
    api = await make_api()
    secret_text = "my private highlighted passage " * 2000
    response = await api.client().post("/chat", json={"message": "hi", "selected_text": secret_text})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"][0]["loc"] == ["body", "selected_text"]
    assert "private" not in response.text
    for bad in ({}, {"message": "hi", "mode": "sing"}, {"message": "hi", "user_id": "root"}):
        response = await api.client().post("/chat", json=bad)
        assert response.status_code == 422, bad
    response = await api.client().post(
        "/chat", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and "error" in response.json()


async def test_unknown_routes_and_methods(make_api: Any) -> None:
    api = await make_api()
    response = await api.client().get("/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    response = await api.client().get("/chat")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    response = await api.client().post("/chat", json=QUESTION, headers={"X-Thread-Id": "x"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_thread_id"


async def test_anonymous_chat_can_be_switched_off(make_api: Any) -> None:
    api = await make_api(allow_anonymous=False)
    client = api.client()
    assert (await client.post("/chat", json=QUESTION)).status_code == 401
    assert (await client.post("/tutor/invoke", json={"input": QUESTION})).status_code == 401
    response = await client.post("/chat", json=QUESTION, headers=api.headers("alice"))
    assert response.status_code == 200


async def test_logs_carry_no_tokens_selection_or_profile(
    make_api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api = await make_api()
    user = f"carol-{uuid.uuid4().hex[:6]}"
    headers = api.headers(user)
    token = headers["Authorization"].split()[1]
    selection = "A topic is a named bus over which nodes exchange messages."
    with caplog.at_level(logging.INFO):
        await api.client().put("/profile", json={"software_background": "expert"}, headers=headers)
        await api.client().post(
            "/chat", json={"message": "explain", "selected_text": selection}, headers=headers
        )
        await api.client().get("/threads", headers=headers)
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.levelno >= logging.INFO)
    assert "/chat" in text  # the access log is there...
    assert token not in text and selection not in text and "expert" not in text  # ...and says nothing more
