"""Retrieval quality on the bundled sample book and its question set."""

from __future__ import annotations

import json

from core.index import BookIndex
from core.retrieval import search
from core.settings import Settings
from ingest.book import book_chunks
from ingest.evaluate import evaluate, load_questions
from tests.conftest import BOOK, QUESTIONS


def test_question_set_points_at_real_sections() -> None:
    lines = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    assert len(lines) >= 40
    assert sum(1 for q in lines if q.get("paraphrased")) >= len(lines) * 0.6
    pages, chunks, problems = book_chunks(BOOK, Settings(_env_file=None))  # type: ignore[call-arg]
    assert not problems and len(pages) >= 12
    sections = {(c.doc_path, c.anchor) for c in chunks}
    for q in lines:
        assert (q["doc_path"], q["anchor"]) in sections, q["id"]


def test_sample_book_is_big_enough() -> None:
    words = sum(len(p.read_text().split()) for p in BOOK.rglob("*.md*"))
    assert words >= 8000


async def test_hybrid_finds_the_gold_section_and_beats_each_leg(book_index: BookIndex) -> None:
    reports = {r.mode: r for r in await evaluate(book_index, load_questions(QUESTIONS), "rrf")}
    # Measured 0.800 (dense 0.714, sparse 0.448) with the sentence leg and one result per section:
    # short of the 0.90 the issue asks for — see README.
    print({mode: (r.recall_at_5, r.ndcg_at_10) for mode, r in reports.items()})
    assert reports["hybrid"].recall_at_5 >= 0.77
    assert reports["hybrid"].recall_at_5 >= reports["dense"].recall_at_5 + 0.04
    assert reports["hybrid"].ndcg_at_10 >= reports["dense"].ndcg_at_10
    assert reports["hybrid"].recall_at_5 > reports["sparse"].recall_at_5 + 0.2


async def test_results_are_distinct_sections(book_index: BookIndex) -> None:
    for mode in ("dense", "sparse", "hybrid"):
        passages = search(book_index, "How do nodes exchange messages over topics?", k=10, mode=mode)  # type: ignore[arg-type]
        sections = [(p.doc_path, p.anchor) for p in passages]
        assert len(passages) == 10 and len(set(sections)) == 10, mode


async def test_passages_carry_deep_links(book_index: BookIndex) -> None:
    passages = search(book_index, "how do nodes talk to each other?", k=5)
    assert passages and all(p.url.startswith("http://localhost:3000/docs/") for p in passages)
    top = passages[0]
    assert top.url.endswith(f"{top.doc_path}#{top.anchor}") and top.heading and top.text
    assert top.heading_path.count("›") >= 1
