"""`tutor eval`: retrieval quality and latency of the dense, sparse and hybrid modes.

Two sources of judged queries:
- a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv), indexed into its own collection
  (`beir-<folder>`) with the same pipeline as the book, so an unchanged corpus is reused;
- a questions file for the already-ingested book: one JSON object a line with `question`,
  `doc_path` and optionally `anchor`; a passage is a hit when it comes from that page (and section).
  An optional `split` ("tune" or "test") is reported on its own as well: settings are chosen on the
  tune halves of the sample book's sets, and the test halves say how well that carries over.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_args

from langchain_core.documents import Document

from core.index import BookIndex
from core.metrics import mean, mrr_at_k, ndcg_at_k, percentile, recall_at_k
from core.retrieval import Passage, SearchMode, search
from ingest.indexer import IngestSummary, ProgressCallback, sync_documents

DEPTH = 100  # results fetched per query: enough for Recall@100
MODES: tuple[SearchMode, ...] = get_args(SearchMode)


class BadQuestions(ValueError):
    """A questions file line is not a question object."""


@dataclass
class ModeReport:
    """Metrics of one retrieval mode over a query set (latencies in milliseconds)."""

    mode: str
    queries: int
    ndcg_at_10: float
    recall_at_5: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    latency_p50_ms: float
    latency_p95_ms: float

    def as_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class JudgedQuery:
    """A query with its relevance judgements, and how a passage is named in them."""

    text: str
    qrels: Mapping[str, int]  # relevant id → grade
    to_id: Callable[[Passage], str]  # how a passage is named in `qrels`
    split: str = ""  # "tune", "test" or none


Run = tuple[list[str], Mapping[str, int], float]  # ranked ids (first hits only), qrels, latency in ms


def score_mode(index: BookIndex, queries: list[JudgedQuery], mode: SearchMode, fusion: str) -> ModeReport:
    """Run every query once in `mode` and average the metrics."""
    return score_mode_by_split(index, queries, mode, fusion)["all"]


def score_mode_by_split(
    index: BookIndex, queries: list[JudgedQuery], mode: SearchMode, fusion: str
) -> dict[str, ModeReport]:
    """Run every query once in `mode`: the averages over all queries ("all") and over each split."""
    runs: list[Run] = []
    for query in queries:
        started = time.perf_counter()
        passages = search(index, query.text, k=DEPTH, mode=mode, fusion=fusion)  # type: ignore[arg-type]
        latency = (time.perf_counter() - started) * 1000
        runs.append((_first_hits_only([query.to_id(p) for p in passages], query.qrels), query.qrels, latency))
    reports = {"all": _report(mode, runs)}
    for split in sorted({query.split for query in queries} - {""}):
        reports[split] = _report(
            mode, [run for run, q in zip(runs, queries, strict=True) if q.split == split]
        )
    return reports


def _report(mode: str, runs: list[Run]) -> ModeReport:
    def avg(metric: Callable[[list[str], Mapping[str, int], int], float], k: int) -> float:
        return round(mean([metric(ranked, qrels, k) for ranked, qrels, _ in runs]), 4)

    latencies = [latency for _, _, latency in runs]
    return ModeReport(
        mode=mode,
        queries=len(runs),
        ndcg_at_10=avg(ndcg_at_k, 10),
        recall_at_5=avg(recall_at_k, 5),
        recall_at_10=avg(recall_at_k, 10),
        recall_at_100=avg(recall_at_k, 100),
        mrr_at_10=avg(mrr_at_k, 10),
        latency_p50_ms=round(percentile(latencies, 50), 2),
        latency_p95_ms=round(percentile(latencies, 95), 2),
    )


def _first_hits_only(ranked: list[str], qrels: Mapping[str, int]) -> list[str]:
    """Only the first chunk of a judged document or section counts as relevant.

    The others keep their rank but not their relevance (so they cannot inflate the metrics).
    """
    seen: set[str] = set()
    out = []
    for rank, doc in enumerate(ranked):
        if doc in qrels and doc in seen:
            doc = f"\0duplicate-{rank}"
        seen.add(doc)
        out.append(doc)
    return out


async def evaluate(index: BookIndex, queries: list[JudgedQuery], fusion: str) -> list[ModeReport]:
    """Every search mode's metrics over `queries`."""
    await index.require()
    return [await asyncio.to_thread(score_mode, index, queries, mode, fusion) for mode in MODES]


async def evaluate_by_split(
    index: BookIndex, queries: list[JudgedQuery], fusion: str
) -> dict[str, list[ModeReport]]:
    """Every mode's reports over all queries ("all") and over each split the queries name."""
    await index.require()
    by_mode = [await asyncio.to_thread(score_mode_by_split, index, queries, mode, fusion) for mode in MODES]
    return {split: [reports[split] for reports in by_mode] for split in by_mode[0]}


# --- the sample book's questions --------------------------------------------------------------------


def load_questions(path: Path) -> list[JudgedQuery]:
    """Questions file → judged queries.

    A passage is named `doc_path#anchor` when the question gives an anchor, else `doc_path`.
    """
    queries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            text, doc_path, anchor = item["question"], item["doc_path"], item.get("anchor")
            split = str(item.get("split") or "")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadQuestions(f"{path}:{number}: not a question object ({exc})") from exc
        gold = f"{doc_path}#{anchor}" if anchor else doc_path
        to_id = _section_id if anchor else _page_id
        queries.append(JudgedQuery(text, {gold: 1}, to_id, split))
    return queries


def _section_id(passage: Passage) -> str:
    return f"{passage.doc_path}#{passage.anchor}"


def _page_id(passage: Passage) -> str:
    return passage.doc_path


# --- BEIR ----------------------------------------------------------------------------------------


def load_beir(folder: Path, split: str = "test") -> tuple[list[Document], list[JudgedQuery]]:
    """A BEIR dataset: its corpus as documents (title and text together) and its judged queries."""
    docs = []
    with (folder / "corpus.jsonl").open(encoding="utf-8") as corpus:
        for line in corpus:
            row = json.loads(line)
            title, text = row.get("title") or "", row.get("text") or ""
            docs.append(
                Document(
                    page_content=f"{title}\n\n{text}" if title else text,
                    metadata={"source": str(row["_id"]), "doc_path": str(row["_id"]), "title": title},
                )
            )
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as tsv:
        for row in csv.DictReader(tsv, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    texts = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            texts[str(row["_id"])] = row["text"]
    queries = [JudgedQuery(texts[qid], judged, _doc_id) for qid, judged in qrels.items() if qid in texts]
    return docs, queries


def _doc_id(passage: Passage) -> str:
    return passage.doc_path


async def prepare_beir(
    index: BookIndex,
    folder: Path,
    on_start: ProgressCallback | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    sentence_vectors: bool = False,
) -> tuple[BookIndex, list[JudgedQuery], IngestSummary]:
    """Index a BEIR corpus into its own collection (reused when unchanged).

    With or without sentence vectors, each layout in a collection of its own.
    """
    docs, queries = load_beir(folder)
    name = f"beir-{folder.resolve().name}" + ("-with-sentences" if sentence_vectors else "")
    beir_index = index.sibling(name, sentence_vectors=sentence_vectors)
    if on_start:
        on_start(len(docs))
    summary = await sync_documents(
        beir_index, docs, present_sources={d.metadata["source"] for d in docs}, on_progress=on_progress
    )
    summary.pages = len(docs)
    return beir_index, queries, summary
