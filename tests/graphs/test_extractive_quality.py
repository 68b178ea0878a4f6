"""Extractive mode must be genuinely useful: on the sample questions, the answer quotes the gold section."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    ("path", "floor"),
    [
        # Paraphrased: measured 84/105 (0.80) with RRF fusion, 86/105 (0.82) with z-score fusion;
        # bounded by retrieval (the gold section is in the top 5 for 87 of the questions).
        (QUESTIONS, 0.77),
        # Plain questions in the book's words: measured 119/122 (0.98); the gold section is in the
        # top 5 for 119 of them (an answer can also quote a gold sentence a wider passage repeats).
        (QUESTIONS.with_name("plain_questions.jsonl"), 0.93),
    ],
    ids=["paraphrased", "plain"],
)
async def test_answers_quote_the_gold_passage_for_most_questions(
    make_tutor, path: Path, floor: float
) -> None:  # type: ignore[no-untyped-def]
    graph, _ = await make_tutor()
    sections = gold_sections()
    questions = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    quoted = 0
    for question in questions:
        result = await turn(graph, message=question["question"], mode="ask")
        gold = sections[(question["doc_path"], question["anchor"])]
        sentences = [
            normalize_for_match(s) for s in re.split(r"\s*\[\d+\]\s*", result["answer"]) if s.strip()
        ]
        quoted += any(s and s in gold for s in sentences)
    # One sentence from each of the top five passages. A little slack below the measurements:
    # int8 vectors move slightly with the CPU's kernels.
    print(f"{path.name}: extractive answers quoting the gold section: {quoted}/{len(questions)}")
    assert quoted / len(questions) >= floor, f"{quoted}/{len(questions)}"
