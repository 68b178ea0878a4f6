"""A soak: many readers holding multi-turn SSE conversations at once, against ours and `langgraph dev`.

    uv run python bench/load.py [--seconds 300] [--conversations 200] [--turns 4] [--workers 1]
        [--vector-store pgvector] [--database-url postgresql://...] [--no-peer]

`--conversations` readers each hold a conversation of `--turns` turns on one thread (the thread id the
server returned), then start a new one, until `--seconds` have passed; each turn is the widget's
`POST /chat/stream` (no mode: the classifier routes it). The fake OpenAI server of bench/api_stream.py
runs in its own process: the answer's first token after 300 ms, then 200 tokens 20 ms apart; the
classifier, condense and title calls are answered at once. `tutor serve --workers N` runs in its own
process on real Postgres (embedded under the run's TUTOR_HOME, or `--database-url`).

The per-address limits (api/limits.py) stay on but are raised so that one address (127.0.0.1, every
reader here) measures the service rather than the anonymous rate limit. A 503 with Retry-After that is
not a failed dependency is a deliberate refusal (an admission queue): counted apart, then retried.

Reported per run: errors (HTTP statuses, SSE `error` events, exceptions, timeouts), truncated streams
(no `done`), added time to first token (TTFT − 300 ms) p50/p95/p99, Postgres connections (sampled every
second from pg_stat_activity; max, beside the pools' summed max sizes), memory of the server processes
(RSS of every worker + PSS of the embedded Postgres; growth from the end of the first minute — the
first fifth of shorter runs — to the end), and CPU per completed turn (server + Postgres process trees).
The peer (`--peer`, default on) is the same graph under `langgraph dev` (langgraph.json) driven by the
same readers through LangGraph's API (a thread, then runs/stream per turn); if it fails at the full
load it is stepped down until it holds, and ours is run at that level too for a like-for-like ratio.
Writes bench/results/load.{json,txt} (`--out`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api_stream import FIRST, QUESTIONS, fake_model, machine  # noqa: E402
from bench.load_conversations import drive, langgraph_turn, tutor_turn  # noqa: E402
from bench.load_services import Service, pool_budget, report, run_summary  # noqa: E402

# Per-address limits raised far above this load (all readers share 127.0.0.1): still counted, never hit.
LIMITS_ENV = {"ANONYMOUS_TURN_LIMIT": "1000000", "CONCURRENT_TURNS_PER_ANONYMOUS_CLIENT": "100000"}
WARMUP_SECONDS = 10


async def measure(service: Service, args: argparse.Namespace, readers: int, seconds: float) -> dict[str, Any]:
    """Warm up (model calls, pools, the graph's first import), then drive `readers` for `seconds`."""
    turn = tutor_turn if service.kind == "tutor" else langgraph_turn
    common = {"turns": args.turns, "turn_timeout": args.timeout, "think": args.think, "questions": QUESTIONS}
    await drive(
        service.url, turn, readers=min(readers, 10), seconds=WARMUP_SECONDS, first_token=FIRST, **common
    )
    print(f"{service.label}: {readers} conversations for {seconds:.0f} s", file=sys.stderr)
    async with service.sampling(seconds) as samples:
        tally = await drive(service.url, turn, readers=readers, seconds=seconds, first_token=FIRST, **common)
    result = run_summary(service, tally, samples, readers, seconds)
    print(f"  {result['counts']} added TTFT {result['added_ttft_ms']}", file=sys.stderr)
    return result


def sustained(result: dict[str, Any]) -> bool:
    """No errors, truncations or timeouts."""
    counts = result["counts"]
    return counts["errors"] == 0 and counts["truncated"] == 0


async def run_service(
    kind: str, args: argparse.Namespace, env: dict[str, str], home: Path, level: int, seconds: float
) -> dict[str, Any]:
    service = Service(kind, home, env, port=args.port, workers=args.workers, jobs=args.peer_jobs or level)
    try:
        await service.wait_ready()
        return await measure(service, args, level, seconds)
    finally:
        service.stop()


async def run(args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="tutor-load-"))
    home.mkdir(parents=True, exist_ok=True)  # the services open their logs in it before the server makes it
    env = {"TUTOR_HOME": str(home), "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "test"}
    env |= {"CHAT_MODEL": "openai:gpt-4o-mini", "LLM_MAX_RETRIES": "0"} | LIMITS_ENV
    env |= {"DATABASE_URL": args.database_url} if args.database_url else {}
    env |= {"VECTOR_STORE": args.vector_store} if args.vector_store else {}
    env |= dict(item.split("=", 1) for item in args.server_env)
    result: dict[str, Any] = {
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["uv run python", *sys.argv]),
        "settings": {**vars(args), "server_env": {k: v for k, v in env.items() if k != "OPENAI_API_KEY"}},
        "pool_budget": {"tutor": pool_budget(env, args.workers), "langgraph": pool_budget(env, 1)},
        "loadavg_start": os.getloadavg(),
        "runs": [],
    }
    first = Service("tutor", home, env, port=args.port, workers=args.workers)
    try:  # a first start builds the model and ingests the book: not what is measured
        result["first_start_s"] = round(await first.wait_ready(), 1)
    finally:
        first.stop()
    ours = await run_service("tutor", args, env, home, args.conversations, args.seconds)
    result["runs"].append(ours)
    if args.peer:
        level, seconds = args.conversations, args.seconds
        while True:
            peer = await run_service("langgraph", args, env, home, level, seconds)
            result["runs"].append(peer)
            if sustained(peer) or level <= 1:
                break
            level, seconds = max(1, level // 2), min(args.seconds, args.probe_seconds)
        if level != args.conversations:  # ours at the level the peer held, for a like-for-like ratio
            result["runs"].append(await run_service("tutor", args, env, home, level, seconds))
    result["loadavg_end"] = os.getloadavg()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=300, help="length of each measured run")
    parser.add_argument("--conversations", type=int, default=200, help="readers at once")
    parser.add_argument("--turns", type=int, default=4, help="turns per conversation (one thread)")
    parser.add_argument("--think", type=float, default=0, help="seconds a reader waits between turns")
    parser.add_argument("--timeout", type=float, default=120, help="seconds one turn may take")
    parser.add_argument("--workers", type=int, default=1, help="`tutor serve --workers`")
    parser.add_argument("--vector-store", help="VECTOR_STORE for the server (e.g. pgvector)")
    parser.add_argument("--database-url", help="DATABASE_URL (default: embedded Postgres)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more server settings (e.g. admission limits); repeatable",
    )
    parser.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run `langgraph dev` under the same load",
    )
    parser.add_argument("--peer-jobs", type=int, help="langgraph dev --n-jobs-per-worker (default: the load)")
    parser.add_argument("--probe-seconds", type=float, default=60, help="length of the peer's step-down runs")
    parser.add_argument("--port", type=int, default=18400, help="port of the server under test")
    parser.add_argument("--home", help="TUTOR_HOME to use (kept; default: a new temporary folder)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "load"))
    args = parser.parse_args()
    with fake_model() as (base_url, _, _):
        result = asyncio.run(run(args, base_url))
    print(text := report(result))
    Path(args.out + ".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    Path(args.out + ".txt").write_text(text)


if __name__ == "__main__":
    main()
