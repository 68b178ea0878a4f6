"""POST /personalize and POST /translate: results through the fake model, cache, quotas, failures.

The database lives for the whole session, so every test uses its own users and its own contents:
counters and cache entries of one test can never answer another's requests.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage

from core.stores.quotas import seconds_until_next_day
from tests.fakes import CapturedRequest, Error, FakeOpenAI, Text
from tests.fakes.fixtures import make_chat_model

CODE = '```python\npublisher = node.create_publisher(String, "chatter", 10)\n```'
URL = "https://docs.ros.org/en/jazzy/Tutorials.html"
PLACEHOLDER = re.compile(r"⟦[A-Z]\d+⟧")
PROFILE = {"software_background": "beginner", "learning_mode": "visual", "preferred_language": "fr"}
PAGE = "module-1-ros2/ros2-communication"


def unique_content() -> str:
    return (
        f"## Publishing {uuid.uuid4().hex[:8]}\n\nUse `rclpy` to publish. See [the docs]({URL}).\n\n{CODE}\n"
    )


def content_of(request: CapturedRequest) -> str:
    match = re.search(r"<content>\n(.*)\n</content>", request.last_user_text, re.S)
    assert match, request.last_user_text
    return match[1]


def rewriter(request: CapturedRequest) -> Text:
    """Personalize: prefix the content; translate: Urdu words around the kept placeholders."""
    content = content_of(request)
    if "translator" in request.system_prompt:
        return Text("".join(re.sub(r"[A-Za-z]+", "لفظ", p) + t for p, t in _pieces(content)))
    return Text("For you: " + content)


def _pieces(content: str) -> list[tuple[str, str]]:
    return list(zip(PLACEHOLDER.split(content), [*PLACEHOLDER.findall(content), ""], strict=True))


async def used(api: Any, user: str, action: str) -> int | None:
    async with api.context.db.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT used FROM usage_counters WHERE user_id = %s AND action = %s AND day = %s",
                (user, action, datetime.now(UTC).date()),
            )
        ).fetchone()
    return row["used"] if row else None


async def rewrite_api(make_api: Any, fake: FakeOpenAI, **settings: Any) -> tuple[Any, Any]:
    fake.responder = rewriter
    api = await make_api(make_chat_model(fake), **settings)
    return api, api.client()


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def test_personalize_uses_the_profile_and_keeps_code_and_links(
    make_api: Any, fake_openai: FakeOpenAI
) -> None:
    api, client = await rewrite_api(make_api, fake_openai)
    headers = api.headers(user())
    await client.put("/profile", json=PROFILE, headers=headers)
    content = unique_content()
    response = await client.post("/personalize", json={"content": content}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"].startswith("For you: ## Publishing") and CODE in body["result"]
    assert f"[the docs]({URL})" in body["result"] and "`rclpy`" in body["result"]
    assert body["language"] == "en" and body["direction"] == "ltr" and body["cached"] is False
    assert body["quota"] == {"limit": 50, "used": 1, "remaining": 49}
    [call] = fake_openai.chat_requests
    prompt = call.last_user_text
    assert "<learner_profile>" in prompt and "beginner" in prompt and "visual" in prompt
    assert "Preferred language" not in prompt  # personalizing must not tempt the model to translate


async def test_personalize_without_a_profile_is_409(make_api: Any, fake_openai: FakeOpenAI) -> None:
    api, client = await rewrite_api(make_api, fake_openai)
    reader = user()
    response = await client.post("/personalize", json={"content": "Hello"}, headers=api.headers(reader))
    assert response.status_code == 409 and response.json()["error"]["code"] == "profile_required"
    assert "PUT /profile" in response.json()["error"]["message"]
    # A profile holding only a language gives the personalize prompt nothing to adapt to either.
    await client.put("/profile", json={"preferred_language": "ur"}, headers=api.headers(reader))
    response = await client.post("/personalize", json={"content": "Hello"}, headers=api.headers(reader))
    assert response.status_code == 409
    assert fake_openai.chat_requests == [] and await used(api, reader, "personalize") is None


async def test_translate_keeps_code_and_links_and_reports_direction(
    make_api: Any, fake_openai: FakeOpenAI
) -> None:
    api, client = await rewrite_api(make_api, fake_openai)
    content = unique_content()
    response = await client.post(
        "/translate", json={"content": content, "target_language": "UR"}, headers=api.headers(user())
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] == "ur" and body["direction"] == "rtl" and body["cached"] is False
    assert CODE in body["result"] and URL in body["result"] and "لفظ" in body["result"]
    assert body["quota"] == {"limit": 100, "used": 1, "remaining": 99}
    assert "Urdu" in fake_openai.chat_requests[0].system_prompt


async def test_translate_defaults_to_the_profile_language_then_urdu(
    make_api: Any, fake_openai: FakeOpenAI
) -> None:
    api, client = await rewrite_api(make_api, fake_openai)
    anyone = api.headers(user())
    response = await client.post("/translate", json={"content": unique_content()}, headers=anyone)
    assert response.json()["language"] == "ur"
    french = api.headers(user())
    await client.put("/profile", json=PROFILE, headers=french)
    response = await client.post("/translate", json={"content": unique_content()}, headers=french)
    assert response.json()["language"] == "fr" and response.json()["direction"] == "ltr"
    assert "French" in fake_openai.chat_requests[-1].system_prompt


async def test_cache_hit_is_free_and_a_new_book_version_misses(
    make_api: Any, fake_openai: FakeOpenAI
) -> None:
    api, client = await rewrite_api(make_api, fake_openai)
    reader = user()
    request = {"content": unique_content(), "target_language": "ur"}
    first = (await client.post("/translate", json=request, headers=api.headers(reader))).json()
    second = (await client.post("/translate", json=request, headers=api.headers(reader))).json()
    assert len(fake_openai.chat_requests) == 1
    assert first["cached"] is False and second["cached"] is True
    assert second["result"] == first["result"] and second["direction"] == "rtl"
    assert second["quota"] == first["quota"] == {"limit": 100, "used": 1, "remaining": 99}
    # Another user asking the same thing shares the result, and their counter is untouched too.
    other = user()
    shared = (await client.post("/translate", json=request, headers=api.headers(other))).json()
    assert shared["cached"] is True and shared["quota"]["used"] == 0
    # Another language is another entry.
    german = (
        await client.post(
            "/translate", json={**request, "target_language": "de"}, headers=api.headers(reader)
        )
    ).json()
    assert german["cached"] is False and len(fake_openai.chat_requests) == 2

    namespace = api.context.tutor.services.namespace
    bump = "UPDATE index_collections SET version = version + %s WHERE namespace = %s"
    async with api.context.db.pool.connection() as conn:
        await conn.execute(bump, (1, namespace))
    try:
        third = (await client.post("/translate", json=request, headers=api.headers(reader))).json()
    finally:
        async with api.context.db.pool.connection() as conn:
            await conn.execute(bump, (-1, namespace))
    assert third["cached"] is False and len(fake_openai.chat_requests) == 3
    assert await used(api, reader, "translate") == 3


async def test_no_chat_model_is_503_and_costs_nothing(make_api: Any) -> None:
    api = await make_api()  # extractive mode
    client, reader = api.client(), user()
    await client.put("/profile", json=PROFILE, headers=api.headers(reader))
    for path in ("/personalize", "/translate"):
        response = await client.post(path, json={"content": "Hello"}, headers=api.headers(reader))
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "needs_chat_model"
        assert await used(api, reader, path.strip("/")) is None


async def test_model_failure_is_503_and_refunded(make_api: Any, fake_openai: FakeOpenAI) -> None:
    api, client = await rewrite_api(make_api, fake_openai)
    fake_openai.responder = lambda request: Error(500)
    reader = user()
    response = await client.post(
        "/translate", json={"content": unique_content()}, headers=api.headers(reader)
    )
    assert response.status_code == 503
    assert response.json() == {
        "error": {"code": "model_unavailable", "message": response.json()["error"]["message"]}
    }
    assert "Traceback" not in response.text
    assert await used(api, reader, "translate") == 0
    # Nothing was cached: once the model is back, the same request is a fresh, counted call.
    fake_openai.responder = rewriter
    response = await client.post(
        "/translate", json={"content": unique_content()}, headers=api.headers(reader)
    )
    assert response.json()["cached"] is False and response.json()["quota"]["used"] == 1


class BrokenModel(FakeListChatModel):
    """A model whose call fails with an error that is not a provider error (a bug, say)."""

    async def _agenerate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")


async def test_unexpected_failure_is_500_and_refunded(make_api: Any) -> None:
    api = await make_api(BrokenModel(responses=["unused"]))
    reader = user()
    response = await api.client().post("/translate", json={"content": "Hello"}, headers=api.headers(reader))
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    assert "boom" not in response.text
    assert await used(api, reader, "translate") == 0


async def test_quota_is_exact_under_concurrency(make_api: Any, fake_openai: FakeOpenAI) -> None:
    api, client = await rewrite_api(make_api, fake_openai, translate_daily_quota=10)
    # A slow model keeps the ten winners in flight while the other forty arrive.
    fake_openai.responder = lambda request: Text("ترجمہ " + content_of(request), first_token_delay=0.2)
    reader = user()
    headers = api.headers(reader)
    requests = [{"content": f"Paragraph number {i}.", "target_language": "ur"} for i in range(50)]
    responses = await asyncio.gather(*(client.post("/translate", json=r, headers=headers) for r in requests))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10 and statuses.count(429) == 40, statuses
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "quota_exceeded"
            assert 1 <= int(response.headers["retry-after"]) <= 86_400
    assert sorted(r.json()["quota"]["used"] for r in responses if r.status_code == 200) == list(range(1, 11))
    assert await used(api, reader, "translate") == 10
    assert len(fake_openai.chat_requests) == 10


async def test_users_have_separate_counters(make_api: Any, fake_openai: FakeOpenAI) -> None:
    api, client = await rewrite_api(make_api, fake_openai, translate_daily_quota=1, personalize_daily_quota=0)
    alice, bob = user(), user()
    assert (
        await client.post("/translate", json={"content": unique_content()}, headers=api.headers(alice))
    ).status_code == 200
    over = await client.post("/translate", json={"content": unique_content()}, headers=api.headers(alice))
    assert over.status_code == 429 and over.headers["retry-after"]
    assert (
        await client.post("/translate", json={"content": unique_content()}, headers=api.headers(bob))
    ).status_code == 200
    # Actions are counted separately too: a zero personalize quota refuses before the model is asked.
    await client.put("/profile", json=PROFILE, headers=api.headers(bob))
    refused = await client.post("/personalize", json={"content": unique_content()}, headers=api.headers(bob))
    assert refused.status_code == 429 and len(fake_openai.chat_requests) == 2
    assert await used(api, alice, "translate") == await used(api, bob, "translate") == 1


async def test_page_subject_is_the_chapter(make_api: Any, fake_openai: FakeOpenAI) -> None:
    api, client = await rewrite_api(make_api, fake_openai)
    headers = api.headers(user())
    chapter = await api.context.tutor.services.retriever.chapter(PAGE)
    assert "## " in chapter
    response = await client.post("/translate", json={"page": PAGE, "target_language": "ur"}, headers=headers)
    assert response.status_code == 200, response.text
    sent = "".join(content_of(r) for r in fake_openai.chat_requests)
    assert "topic" in sent.lower() and response.json()["result"]
    # The page's URL names the same subject: a cache hit.
    url = f"https://tutor.example/docs/{PAGE}#topics"
    again = await client.post("/translate", json={"page": url, "target_language": "ur"}, headers=headers)
    assert again.json()["cached"] is True and again.json()["result"] == response.json()["result"]
    # Content, when present, wins over the page.
    both = await client.post("/translate", json={"page": PAGE, "content": "Only this."}, headers=headers)
    assert both.status_code == 200 and "Only" not in both.json()["result"]
    assert content_of(fake_openai.chat_requests[-1]) == "Only this."


async def test_bad_subjects(make_api: Any, fake_openai: FakeOpenAI) -> None:
    api, client = await rewrite_api(make_api, fake_openai)
    reader = user()
    headers = api.headers(reader)
    cases = [
        ("/translate", {}, 422),
        ("/translate", {"content": "   "}, 422),
        ("/translate", {"page": "no/such-page"}, 404),
        ("/translate", {"content": "x" * 100_001}, 422),
        ("/translate", {"content": "Hi", "target_language": "Klingon!"}, 422),
        ("/personalize", {"content": "Hi", "target_language": "ur"}, 422),  # not a personalize field
    ]
    for path, body, status in cases:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert set(response.json()["error"]) >= {"code", "message"}
    assert fake_openai.chat_requests == [] and await used(api, reader, "translate") is None
    anonymous = await client.post("/translate", json={"content": "Hi"})
    assert anonymous.status_code == 401


def test_retry_after_counts_to_the_next_utc_midnight() -> None:
    assert seconds_until_next_day(datetime(2025, 3, 1, 23, 59, 30, tzinfo=UTC)) == 30
    assert seconds_until_next_day(datetime(2025, 3, 1, 0, 0, 0, tzinfo=UTC)) == 86_400
    assert seconds_until_next_day(datetime(2025, 3, 1, 23, 59, 59, 999_999, tzinfo=UTC)) == 1
