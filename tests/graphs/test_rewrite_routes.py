"""The personalize and translate routes through the graph (rules: graphs.rewrite_policy; the same
rules on every HTTP entry point: tests/api/test_rewrite_policy.py)."""

from __future__ import annotations

import re
import uuid

import pytest

from core.profile import LearnerProfile
from graphs.rewrite_policy import RewriteRefused
from tests.fakes import Text
from tests.fakes.fixtures import make_chat_model
from tests.graphs.conftest import turn, tutor_responder

CONTENT = """## Publishing

Use `rclpy` to publish on a topic. See [the docs](https://docs.ros.org/en/jazzy/) for details.

```python
publisher = node.create_publisher(String, "chatter", 10)
```
"""
BEGINNER = LearnerProfile(software_background="beginner")


def reader() -> str:
    return f"reader-{uuid.uuid4().hex[:8]}"


async def test_profile_reaches_the_personalize_prompt(make_tutor, chat_provider) -> None:  # type: ignore[no-untyped-def]
    chat_provider.fake.responder = tutor_responder(route="personalize", rewrite="Simpler words.")
    graph, _ = await make_tutor(chat_provider.model())
    profile = LearnerProfile(software_background="beginner", learning_mode="visual")
    result = await turn(
        graph, user=reader(), message="Make this easier for me", content=CONTENT, profile=profile
    )
    assert result["route"] == "personalize" and result["answer"].startswith("Simpler words")
    rewrite_call = chat_provider.fake.chat_requests[-2]  # the last call is the title
    assert "<learner_profile>" in str(rewrite_call.messages)
    assert "beginner" in str(rewrite_call.messages) and "visual" in str(rewrite_call.messages).lower()


async def test_translation_keeps_code_urls_and_glossary(make_tutor, chat_provider) -> None:  # type: ignore[no-untyped-def]
    def translator(request):  # type: ignore[no-untyped-def]
        if "translat" not in request.system_prompt.lower():
            return tutor_responder()(request)
        placeholders = re.findall(r"⟦[A-Z]\d+⟧", request.last_user_text)
        return Text("ترجمہ: " + " ".join(placeholders))  # a "translation" keeping the placeholders

    chat_provider.fake.responder = translator
    graph, _ = await make_tutor(chat_provider.model())
    result = await turn(
        graph,
        user=reader(),
        message="Translate this",
        content=CONTENT,
        mode="translate",
        target_language="ur",
    )
    answer = result["answer"]
    assert result["language"] == "ur" and answer.startswith("ترجمہ")
    assert 'publisher = node.create_publisher(String, "chatter", 10)' in answer
    assert "https://docs.ros.org/en/jazzy/" in answer and "`rclpy`" in answer


async def test_translate_defaults_to_the_profile_language_then_urdu(make_tutor, chat_provider) -> None:  # type: ignore[no-untyped-def]
    chat_provider.fake.responder = tutor_responder(rewrite="Traduction.")
    graph, _ = await make_tutor(chat_provider.model())
    french = await turn(
        graph,
        user=reader(),
        message="translate",
        content="Hello",
        mode="translate",
        profile=LearnerProfile(preferred_language="fr"),
    )
    urdu = await turn(graph, user=reader(), message="translate", content="Hello", mode="translate")
    assert (french["language"], urdu["language"]) == ("fr", "ur")


async def test_subject_falls_back_to_last_answer_then_page_chapter(make_tutor, chat_provider) -> None:  # type: ignore[no-untyped-def]
    chat_provider.fake.responder = tutor_responder(rewrite="Rewritten.")
    graph, _ = await make_tutor(chat_provider.model())

    def rewrite_calls(word: str) -> list[str]:
        return [r.last_user_text for r in chat_provider.fake.chat_requests if word in r.system_prompt.lower()]

    thread, user = str(uuid.uuid4()), reader()
    await turn(graph, thread, user=user, message="What does a ROS 2 topic do?", mode="ask")
    await turn(graph, thread, user=user, profile=BEGINNER, message="simpler please", mode="personalize")
    assert "Topics carry streams of messages" in rewrite_calls("adapt passages")[-1]  # the last answer

    await turn(
        graph,
        user=user,
        message="translate this chapter",
        mode="translate",
        page="/docs/module-4-vla/vla-models",
    )
    chapter = rewrite_calls("translat")[-1]
    assert "## Action Tokenization" in chapter  # headings put back, sections in page order
    assert chapter.index("Action Tokenization") < chapter.index("Fine-Tuning a")


@pytest.mark.parametrize(
    ("user", "profile", "inputs", "code"),
    [
        (None, None, {"mode": "translate", "content": CONTENT}, "login_required"),
        ("someone", None, {"mode": "personalize", "content": CONTENT}, "profile_required"),
        ("someone", None, {"mode": "translate"}, "no_subject"),  # a new thread: nothing to translate
        ("someone", None, {"mode": "translate", "page": "no/such-page"}, "not_found"),
    ],
)
async def test_refused_rewrites_stop_the_turn_and_leave_no_transcript(  # type: ignore[no-untyped-def]
    make_tutor, fake_openai, user, profile, inputs, code
) -> None:
    fake_openai.responder = tutor_responder(rewrite="Never sent.")
    graph, services = await make_tutor(make_chat_model(fake_openai))
    thread = str(uuid.uuid4())
    with pytest.raises(RewriteRefused) as refused:
        await turn(graph, thread, user=user and reader(), profile=profile, message="please", **inputs)
    assert refused.value.code == code and fake_openai.chat_requests == []
    async with services.db.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM thread_messages WHERE thread_id = %s", (thread,))
        assert (await cur.fetchone())["n"] == 0  # type: ignore[index]
