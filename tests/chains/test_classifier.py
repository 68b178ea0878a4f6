"""The intent classifier: never a model-only route without a model; keyword rules when its call fails."""

from __future__ import annotations

import json

from chains.classifier import classify, classify_by_keywords
from tests.conftest import QUESTIONS
from tests.fakes import Error, FakeOpenAI
from tests.fakes.fixtures import make_chat_model

BOOK_QUESTIONS = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]


async def test_without_a_model_every_book_question_is_asked() -> None:
    assert len(BOOK_QUESTIONS) > 100
    routes = {question: await classify(None, question) for question in BOOK_QUESTIONS}
    assert set(routes.values()) == {"ask"}
    # Even explicit rewrite wording: offline, only ask can answer it.
    assert await classify(None, "Translate the last answer into Urdu") == "ask"


def test_the_keyword_rules_sent_book_questions_to_personalize() -> None:
    """Why the offline classifier no longer uses them: they misroute the book's own question."""
    question = "How do I adapt a pretrained generalist policy to my own hardware cheaply?"
    assert question in BOOK_QUESTIONS and classify_by_keywords(question) == "personalize"


async def test_a_failed_classifier_call_falls_back_to_keyword_rules(fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = lambda request: Error(500)
    model = make_chat_model(fake_openai)
    assert await classify(model, "Translate the last answer into Urdu") == "translate"
    assert await classify(model, "Explain this for a beginner please") == "personalize"
    assert await classify(model, "What does a ROS 2 topic do?") == "ask"
    assert len(fake_openai.chat_requests) == 3  # one call each, then the rules
    fake_openai.problems.clear()
