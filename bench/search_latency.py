"""Hybrid query latency at sample-book scale, embedding the query included.

    uv run tutor ingest book/docs && uv run python bench/search_latency.py [--k 5] [--rounds 3]
        [--questions book/plain_questions.jsonl] [--vector-store qdrant|pgvector]

`--vector-store` overrides VECTOR_STORE (ingest the book into that backend first). CPU time here is
this process only; pgvector's scans run in the Postgres server (bench/vector_stores.py counts both).

Runs every question of the questions file (default book/questions.jsonl) `--rounds` times after a
warm-up; prints p50/p95 wall time and the mean CPU time of this process per query, per mode, and one
JSON line. CPU time says what a query costs even on a busy machine; wall time needs a quiet one. Uses
the configured TUTOR_HOME (the book must be ingested).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.metrics import percentile  # noqa: E402
from core.retrieval import search  # noqa: E402
from core.runtime import open_book_index  # noqa: E402
from core.settings import get_settings  # noqa: E402


async def run(k: int, rounds: int, questions_file: Path, vector_store: str | None) -> dict[str, Any]:
    settings = get_settings()
    if vector_store:
        settings = settings.model_copy(update={"vector_store": vector_store})
    questions = [json.loads(line)["question"] for line in questions_file.open() if line.strip()]
    result: dict[str, Any] = {
        "k": k,
        "queries": len(questions) * rounds,
        "fusion": settings.hybrid_fusion,
        "vector_store": settings.vector_store,
    }
    async with open_book_index(settings) as index:
        info = await index.require()
        result["chunks"] = info.chunks
        for question in questions[:10]:  # warm-up: sessions, caches
            search(index, question, k=k, fusion=settings.hybrid_fusion)
        for mode in ("dense", "sparse", "hybrid"):
            timings = []
            cpu_started = time.process_time()
            for _ in range(rounds):
                for question in questions:
                    started = time.perf_counter()
                    search(index, question, k=k, mode=mode, fusion=settings.hybrid_fusion)  # type: ignore[arg-type]
                    timings.append((time.perf_counter() - started) * 1000)
            result[mode] = {
                "p50_ms": round(percentile(timings, 50), 1),
                "p95_ms": round(percentile(timings, 95), 1),
                "cpu_ms_per_query": round((time.process_time() - cpu_started) * 1000 / len(timings), 1),
            }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=Path, default=ROOT / "book" / "questions.jsonl")
    parser.add_argument("--vector-store", choices=["qdrant", "pgvector"], default=None)
    args = parser.parse_args()
    result = asyncio.run(run(args.k, args.rounds, args.questions, args.vector_store))
    print("| mode | p50 ms | p95 ms | CPU ms/query |\n|---|---|---|---|")
    for mode in ("dense", "sparse", "hybrid"):
        timing = result[mode]
        print(f"| {mode} | {timing['p50_ms']} | {timing['p95_ms']} | {timing['cpu_ms_per_query']} |")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
