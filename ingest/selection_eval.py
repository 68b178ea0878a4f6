"""`tutor eval --selections`: does the selection route decline what the selection does not say?

The labelled set (`book/selections.jsonl`) holds real passages of the book as a reader would
highlight them, each with a question the passage answers (`answered`) and a question about a
neighbouring topic it does not answer (`unanswered`), and a fixed `split` ("tune" or "test"). Without
a chat model the route declines when the selection's best sentence scores under
`SELECTION_SUPPORT_FLOOR`; this module measures that decision. Positive class = "decline": precision
is the share of declines that were right, recall the share of unanswerable questions declined.

The floor is chosen on the tune split only (`tuned_floor`, best F1 there); the test split is the
honest figure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from chains.extractive import read_selection

SPLITS = ("tune", "test")


class BadSelections(ValueError):
    """A line of the selections file is not a labelled selection."""


@dataclass(frozen=True)
class LabelledSelection:
    """One labelled question about a selection: whether the selection answers it."""

    id: str
    doc_path: str  # the page it was copied from (under book/docs)
    selection: str
    answered: str  # a question the selection answers
    unanswered: str  # a question on a neighbouring topic that it does not
    split: str


@dataclass(frozen=True)
class ScoredQuestion:
    """A labelled question with the support score the selection route gave it."""

    selection_id: str
    split: str
    question: str
    should_decline: bool
    support: float


@dataclass
class DeclineReport:
    """Declining at one floor, over one split (positive class: decline)."""

    split: str
    questions: int
    declined: int
    precision: float
    recall: float
    f1: float

    def as_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)


def load_selections(path: Path) -> list[LabelledSelection]:
    """The labelled selections of a JSON Lines file."""
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            item = LabelledSelection(
                row["id"], row["doc_path"], row["selection"], row["answered"], row["unanswered"], row["split"]
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BadSelections(f"{path}:{number}: not a labelled selection ({exc})") from None
        if item.split not in SPLITS:
            raise BadSelections(f"{path}:{number}: split must be one of {SPLITS}")
        items.append(item)
    return items


def score_questions(items: Sequence[LabelledSelection], embeddings: Embeddings) -> list[ScoredQuestion]:
    """Each question's support score against its selection, as the selection route computes it."""
    scored = []
    for item in items:
        for question, should_decline in ((item.answered, False), (item.unanswered, True)):
            support = read_selection(question, item.selection, embeddings).support
            scored.append(ScoredQuestion(item.id, item.split, question, should_decline, support))
    return scored


def decline_report(scored: Sequence[ScoredQuestion], floor: float, split: str = "all") -> DeclineReport:
    """Precision and recall of declining below `floor` on one split."""
    chosen = [q for q in scored if split == "all" or q.split == split]
    declined = [q for q in chosen if q.support < floor]
    right = sum(q.should_decline for q in declined)
    precision = right / len(declined) if declined else 1.0
    recall = right / max(1, sum(q.should_decline for q in chosen))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    rounded = (round(value, 4) for value in (precision, recall, f1))
    return DeclineReport(split, len(chosen), len(declined), *rounded)


def tune_floor(scored: Sequence[ScoredQuestion]) -> float:
    """The floor with the best F1 on the tune split (the lowest such floor on a tie: it declines least).

    Candidates are midpoints between consecutive scores.
    """
    supports = sorted({q.support for q in scored if q.split == "tune"})
    candidates = [round((a + b) / 2, 3) for a, b in pairwise(supports)]
    return max(candidates, key=lambda floor: (decline_report(scored, floor, "tune").f1, -floor))


def evaluate_selections(path: Path, embeddings: Embeddings, floor: float) -> dict[str, Any]:
    """Declines measured on each split, and the floor the tune split picks.

    Precision and recall of declining at `floor` on each split and on all, plus the floor the
    tune split alone would pick.
    """
    items = load_selections(path)
    scored = score_questions(items, embeddings)
    return {
        "selections": len(items),
        "floor": floor,
        "tuned_floor": tune_floor(scored),
        "reports": [decline_report(scored, floor, split).as_json() for split in (*SPLITS, "all")],
    }
