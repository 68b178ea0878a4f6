"""The personalize and translate routes through the graph."""

from __future__ import annotations

import re
import uuid

from core.profile import LearnerProfile
from tests.fakes import Text
from tests.graphs.conftest import turn, tutor_responder

CONTENT = """## Publishing

Use `rclpy` to publish on a topic. See [the docs](https://docs.ros.org/en/jazzy/) for details.

```python
publisher = node.create_publisher(String, "chatter", 10)
```
"""


async def test_profile_reaches_the_personalize_prompt(make_tutor, chat_provider) -> None:  # type: ignore[no-untyped-def]
    chat_provider.fake.responder = tutor_responder(route="personalize", rewrite="Simpler words.")
    graph, _ = await make_tutor(chat_provider.model())
    profile = LearnerProfile(software_background="beginner", learning_mode="visual")
    result = await turn(graph, message="Make this easier for me", content=CONTENT, profile=profile)
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
        graph, message="Translate this", content=CONTENT, mode="translate", target_language="ur"
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
        message="translate",
        content="Hello",
        mode="translate",
        profile=LearnerProfile(preferred_language="fr"),
    )
    urdu = await turn(graph, message="translate", content="Hello", mode="translate")
    assert (french["language"], urdu["language"]) == ("fr", "ur")


async def test_subject_falls_back_to_last_answer_then_page_chapter(make_tutor, chat_provider) -> None:  # type: ignore[no-untyped-def]
    chat_provider.fake.responder = tutor_responder(rewrite="Rewritten.")
    graph, _ = await make_tutor(chat_provider.model())

    def rewrite_calls(word: str) -> list[str]:
        return [r.last_user_text for r in chat_provider.fake.chat_requests if word in r.system_prompt.lower()]

    thread = str(uuid.uuid4())
    await turn(graph, thread, message="What does a ROS 2 topic do?", mode="ask")
    await turn(graph, thread, message="simpler please", mode="personalize")
    assert "Topics carry streams of messages" in rewrite_calls("adapt passages")[-1]  # the last answer

    await turn(
        graph, message="translate this chapter", mode="translate", page="/docs/module-4-vla/vla-models"
    )
    chapter = rewrite_calls("translat")[-1]
    assert "## Action Tokenization" in chapter  # headings put back, sections in page order
    assert chapter.index("Action Tokenization") < chapter.index("Fine-Tuning a")
