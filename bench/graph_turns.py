"""Graph overhead per turn and checkpoint storage per thread (embedded Postgres, local Qdrant).

    uv run python bench/graph_turns.py [--threads 10] [--turns 200]

The chat model is the real langchain-openai client talking to the test suite's fake OpenAI server,
which answers instantly: what is measured is the graph (routing, retrieval, prompt building, citation
mapping, memory, checkpoints, transcript), not a model. Each thread runs `--turns` ask turns (explicit
mode, so one model call per turn plus the title and summary calls when due); latency is taken at
turn 1 and turn 100 across threads, checkpoint bytes after 10, 100 and 200 turns.
Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.metrics import percentile  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.stores.threads import stored_bytes  # noqa: E402
from graphs.context import run_config  # noqa: E402
from graphs.tutor import open_tutor  # noqa: E402
from ingest.book import ingest_book  # noqa: E402
from tests.fakes import FakeOpenAI, Json, Text  # noqa: E402

QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "book" / "questions.jsonl").open()]


def respond(request: Any) -> Any:
    system = request.system_prompt
    if "standalone search query" in system:
        message = request.last_user_text.rsplit("<message>", 1)[-1].split("</message>")[0].strip()
        return Json({"query": message, "language": "en"})
    if "short title" in system:
        return Text("A title")
    if "running summary" in system:
        return Text("The reader asked about robots.")
    return Text("Here is what the book says [1]. And more detail [2].")


async def run(threads: int, turns: int) -> dict[str, Any]:
    fake = FakeOpenAI().start()
    fake.responder = respond
    home = Path(tempfile.mkdtemp(prefix="tutor-bench-"))
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        tutor_home=home,
        chat_model="openai:gpt-4o-mini",
        openai_base_url=fake.base_url,
        llm_max_retries=0,
    )
    os.environ.setdefault("OPENAI_API_KEY", "bench")
    latencies: dict[int, list[float]] = {1: [], 100: []}
    sizes: dict[int, list[dict[str, int]]] = {10: [], 100: [], 200: []}
    async with open_tutor(settings) as tutor:
        await ingest_book(tutor.services.retriever.index, ROOT / "book" / "docs", settings)
        await tutor.services.retriever.index.require()
        for t in range(threads):
            thread = str(uuid.uuid4())
            for n in range(1, turns + 1):
                question = QUESTIONS[(t * 7 + n) % len(QUESTIONS)]
                started = time.perf_counter()
                await tutor.graph.ainvoke({"message": question, "mode": "ask"}, run_config(thread))
                elapsed = (time.perf_counter() - started) * 1000
                if n in latencies:
                    latencies[n].append(elapsed)
                if n in sizes:
                    sizes[n].append(await stored_bytes(tutor.services.db, thread))
            print(f"thread {t + 1}/{threads} done", file=sys.stderr)
    fake.stop()
    return {
        "machine": f"{platform.node()} {platform.machine()} {len(os.sched_getaffinity(0))} cores",
        "threads": threads,
        "turns": turns,
        "latency_ms": {
            f"turn_{n}": {"p50": round(percentile(v, 50), 1), "p95": round(percentile(v, 95), 1)}
            for n, v in latencies.items()
            if v
        },
        "storage_bytes": {
            f"after_{n}": {
                "checkpoint": int(statistics.median(s["checkpoint"] for s in v)),
                "transcript": int(statistics.median(s["transcript"] for s in v)),
            }
            for n, v in sizes.items()
            if v
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    result = asyncio.run(run(args.threads, args.turns))
    print("| turn | p50 ms | p95 ms |\n|---|---|---|")
    for name, value in result["latency_ms"].items():
        print(f"| {name} | {value['p50']} | {value['p95']} |")
    print("\n| after | checkpoint bytes | transcript bytes | ratio |\n|---|---|---|---|")
    for name, value in result["storage_bytes"].items():
        ratio = value["checkpoint"] / max(1, value["transcript"])
        print(f"| {name} | {value['checkpoint']} | {value['transcript']} | {ratio:.2f} |")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
