"""The selection route: the selection only — no retrieval, no history, no other passages."""

from __future__ import annotations

import uuid

from core.settings import Settings
from ingest.book import book_chunks
from tests.conftest import BOOK
from tests.graphs.conftest import requests_like, turn, tutor_responder

OUTSIDE = "Bananas are rich in potassium and are harvested green before they ripen on the way to market."


def book_passage() -> tuple[str, str, str]:
    """A real paragraph of the book, as a reader would select it (rendered: no Markdown, new spacing)."""
    _, chunks, _ = book_chunks(BOOK, Settings(_env_file=None))  # type: ignore[call-arg]
    chunk = next(c for c in chunks if c.anchor == "qos")
    paragraph = next(p for p in chunk.text.split("\n\n") if len(p) > 120 and not p.startswith(("```", "|")))
    rendered = " ".join(paragraph.replace("**", "").replace("`", "").split())
    return rendered, chunk.doc_path, chunk.anchor


async def test_selection_uses_no_retriever_and_no_history(make_tutor, chat_provider) -> None:  # type: ignore[no-untyped-def]
    chat_provider.fake.responder = tutor_responder()
    graph, services = await make_tutor(chat_provider.model())
    thread = str(uuid.uuid4())
    await turn(graph, thread, message="What does a ROS 2 topic do?", mode="ask")
    calls = services.retriever.calls
    selection, doc_path, anchor = book_passage()
    result = await turn(graph, thread, message="Explain the highlighted part", selected_text=selection)
    assert services.retriever.calls == calls  # zero retriever calls
    request = requests_like(chat_provider.fake, "highlighted a passage")[-1]
    sent = str(request.messages)
    assert selection[:60] in sent and "Explain the highlighted part" in sent
    assert "What does a ROS 2 topic do?" not in sent and "Topics carry" not in sent  # no history
    assert "<passage" not in sent  # no other passages
    assert result["verified_selection"] is True
    assert result["sources"][0]["url"].endswith(f"{doc_path}#{anchor}")


async def test_selection_outside_the_book_is_not_verified(make_tutor) -> None:  # type: ignore[no-untyped-def]
    graph, services = await make_tutor()
    result = await turn(graph, message="Why are they green?", selected_text=OUTSIDE)
    assert result["route"] == "selection" and result["verified_selection"] is False
    assert result["sources"] == [] and "green" in result["answer"]
    assert services.retriever.calls == 0


async def test_follow_up_stays_on_the_last_selection(make_tutor, chat_provider) -> None:  # type: ignore[no-untyped-def]
    chat_provider.fake.responder = tutor_responder()
    graph, _ = await make_tutor(chat_provider.model())
    thread = str(uuid.uuid4())
    await turn(graph, thread, message="Why are they harvested green?", selected_text=OUTSIDE)
    result = await turn(graph, thread, message="and what about potassium?", mode="selection")
    assert result["route"] == "selection"
    assert OUTSIDE[:40] in str(requests_like(chat_provider.fake, "highlighted a passage")[-1].messages)


async def test_selection_mode_without_any_selection_is_an_error_result(make_tutor) -> None:  # type: ignore[no-untyped-def]
    graph, _ = await make_tutor()
    result = await turn(graph, message="What does it mean?", mode="selection")
    assert result["error"]["code"] == "no_selection"
