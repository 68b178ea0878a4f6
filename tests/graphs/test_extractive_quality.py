"""Extractive mode must be genuinely useful: on the sample questions, the answer quotes the gold section."""

from __future__ import annotations

import json
import re

from core.settings import Settings
from core.text import normalize_for_match
from ingest.book import book_chunks
from tests.conftest import BOOK, QUESTIONS
from tests.graphs.conftest import turn


def gold_sections() -> dict[tuple[str, str], str]:
    _, chunks, _ = book_chunks(BOOK, Settings(_env_file=None))  # type: ignore[call-arg]
    sections: dict[tuple[str, str], str] = {}
    for chunk in chunks:
        key = (chunk.doc_path, chunk.anchor)
        sections[key] = sections.get(key, "") + " " + normalize_for_match(chunk.text)
    return sections


async def test_answers_quote_the_gold_passage_for_most_questions(make_tutor) -> None:  # type: ignore[no-untyped-def]
    graph, _ = await make_tutor()
    sections = gold_sections()
    questions = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    quoted = 0
    for question in questions:
        result = await turn(graph, message=question["question"], mode="ask")
        gold = sections[(question["doc_path"], question["anchor"])]
        sentences = [
            normalize_for_match(s) for s in re.split(r"\s*\[\d+\]\s*", result["answer"]) if s.strip()
        ]
        quoted += any(s and s in gold for s in sentences)
    # Measured 84/105 (0.80, the target) with one sentence from each of the top five
    # passages; bounded by retrieval (the gold section is in the top 5 for 84 of the questions).
    # A little slack below the measurement: int8 vectors move slightly with the CPU's kernels.
    print(f"extractive answers quoting the gold section: {quoted}/{len(questions)}")
    assert quoted / len(questions) >= 0.77, f"{quoted}/{len(questions)}"
