"""The servers bench/load.py drives, what it samples from them each second, and its report.

Both servers start as bench/api_stream.py's `Server` does (`uv run`, own session, SIGINT to stop) —
`Service` extends it with the command, the worker count and the settings of a load run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
from pgserver.utils import PostmasterInfo

from bench.api_stream import MIB, ROOT, Server, wait_healthy
from bench.load_conversations import Tally
from core.metrics import percentile
from core.settings import Settings

PG_CLIENTS = (
    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' "
    "AND datname = current_database() AND pid <> pg_backend_pid()"
)


try:  # the pgvector backend's own pool for search reads (per process)
    from core.vector_backends.pgvector import READ_POOL_SIZE  # type: ignore[import-not-found]
except ImportError:  # a tree without the pgvector backend
    READ_POOL_SIZE = 0


def pool_budget(env: dict[str, str], processes: int) -> int:
    """The most connections the pools of `processes` server processes may open.

    Each process has one pool (core.db, DB_POOL_MAX_SIZE), which the LangGraph checkpointer
    shares; with VECTOR_STORE=pgvector, search reads have a pool of their own (its writes open
    connections only while ingesting, before the measured run).
    """
    per_process = int(env.get("DB_POOL_MAX_SIZE", Settings.model_fields["db_pool_max_size"].default))
    if env.get("VECTOR_STORE") == "pgvector":
        per_process += READ_POOL_SIZE
    return processes * per_process


class Service(Server):
    """`tutor serve --workers N` or `langgraph dev` (kind "tutor" / "langgraph") on a TUTOR_HOME."""

    def __init__(
        self, kind: str, home: Path, env: dict[str, str], *, port: int, workers: int, jobs: int = 10
    ) -> None:
        self.kind, self.home, self.port, self.url = kind, home, port, f"http://127.0.0.1:{port}"
        self.database_url = env.get("DATABASE_URL")
        if kind == "tutor":
            cmd = ["tutor", "serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
            self.health, self.processes = "/health", workers
            store = env.get("VECTOR_STORE", "qdrant (embedded)" if "QDRANT_URL" not in env else "qdrant")
            self.label = f"tutor serve, {workers} worker{'s' * (workers > 1)}, {store}"
        else:
            cmd = ["langgraph", "dev", "--no-browser", "--no-reload", "--port", str(port)]
            cmd += ["--n-jobs-per-worker", str(jobs), "--server-log-level", "warning"]
            self.health, self.processes = "/ok", 1
            self.label = f"langgraph dev (--n-jobs-per-worker {jobs})"
        self.pool_budget = pool_budget(env, self.processes)
        unset = ("DATABASE_URL", "CHAT_MODEL", "VECTOR_STORE", "QDRANT_URL")
        full_env = {k: v for k, v in os.environ.items() if k not in unset} | env
        self.log = (home / f"{kind}-{port}.log").open("a")
        self.proc = subprocess.Popen(
            ["uv", "run", *cmd],
            cwd=ROOT,
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.python = self.postmaster = psutil.Process(self.proc.pid)
        self.pythons = [self.python]  # the name Server.stop uses on the branch that reworks api_stream

    async def wait_ready(self, limit: float = 300) -> float:
        """Seconds until the health check answers; then finds the server's and Postgres's processes."""
        waited = await wait_healthy(self.url, self.health, self.proc, self.kind, self.log.name, limit)
        self.python = psutil.Process(self.proc.pid).children()[0]  # `uv run` starts one Python
        self.pythons = [self.python]
        return waited

    def locate_postgres(self) -> str:
        """The database's URL; finds the embedded postmaster (`langgraph dev` starts it on first use)."""
        if self.database_url:
            return self.database_url
        info = PostmasterInfo.read_from_pgdata(self.home / "postgres")
        if info is None:
            raise RuntimeError(f"no embedded Postgres running under {self.home / 'postgres'}")
        self.postmaster = psutil.Process(info.pid)
        return info.get_uri()

    def server_processes(self) -> list[psutil.Process]:
        """The server's Python processes: the main one and its workers."""
        tree = [self.python, *self.python.children(recursive=True)]
        return [p for p in tree if _name(p) not in ("postgres", "uv")]

    def postgres_processes(self) -> list[psutil.Process]:
        """The embedded Postgres: the postmaster and its children (none with an external server)."""
        if self.database_url:
            return []
        return [self.postmaster, *self.postmaster.children()]

    @contextlib.asynccontextmanager
    async def sampling(self, seconds: float) -> AsyncIterator[dict[str, Any]]:
        """Every second: Postgres client connections, server RSS, Postgres PSS; CPU over the block.

        With an external Postgres its CPU is that of the backends serving our database, as sampled.
        """
        samples: dict[str, Any] = {"series": [], "backend_cpu": {}}
        conn = await psycopg.AsyncConnection.connect(self.locate_postgres(), autocommit=True)
        started, cpu_before = time.monotonic(), self.cpu()

        async def sample() -> None:
            while True:
                pids = [row[0] for row in await (await conn.execute(PG_CLIENTS)).fetchall()]
                if self.database_url:
                    for pid in pids:
                        with contextlib.suppress(psutil.Error):
                            first, _ = samples["backend_cpu"].get(pid, (None, None))
                            now = _cpu([psutil.Process(pid)])
                            samples["backend_cpu"][pid] = (now if first is None else first, now)
                server = sum(_memory(p, pss=False) for p in self.server_processes())
                pg = sum(_memory(p, pss=True) for p in self.postgres_processes())
                at = round(time.monotonic() - started, 1)
                samples["series"].append(
                    {
                        "t": at,
                        "pg_connections": len(pids),
                        "server_rss_mib": round(server, 1),
                        "postgres_pss_mib": round(pg, 1),
                    }
                )
                await asyncio.sleep(1)

        task = asyncio.create_task(sample())
        try:
            yield samples
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await conn.close()
            server, pg = (after - before for before, after in zip(cpu_before, self.cpu(), strict=True))
            if self.database_url:
                pg = sum(last - first for first, last in samples["backend_cpu"].values())
            samples["cpu_s"] = {"server": server, "postgres": pg}
            samples["elapsed_s"] = time.monotonic() - started

    def cpu(self) -> tuple[float, float]:
        """CPU seconds of the server's and the embedded Postgres's processes, ended children included."""
        return _cpu(self.server_processes()), _cpu(self.postgres_processes())


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.Error:
        return ""


def _cpu(processes: list[psutil.Process]) -> float:
    """user + system of each process and of its children that have ended (counted once, by the parent)."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def _memory(process: psutil.Process, *, pss: bool) -> float:
    with contextlib.suppress(psutil.Error):
        return (process.memory_full_info().pss if pss else process.memory_info().rss) / MIB
    return 0.0


def run_summary(
    service: Service, tally: Tally, samples: dict[str, Any], readers: int, seconds: float
) -> dict[str, Any]:
    """One measured run's figures (see bench/load.py)."""
    counts, series = tally.summary(), samples["series"]
    turns = max(1, counts["turns_done"])
    cpu = {key: round(value * 1000 / turns) for key, value in samples["cpu_s"].items()}
    ttft = {f"p{q}": round(percentile(tally.ttft, q)) if tally.ttft else None for q in (50, 95, 99)}
    mark = min(60.0, seconds / 5)  # the end of the first minute (a fifth of shorter runs)
    early = next((s for s in series if s["t"] >= mark), series[0])
    memory = {"from_t": early["t"], "to_t": series[-1]["t"]}
    for key in ("server_rss_mib", "postgres_pss_mib"):
        memory[key] = {"start": early[key], "end": series[-1][key], "max": max(s[key] for s in series)}
    total_start = early["server_rss_mib"] + early["postgres_pss_mib"]
    total_end = series[-1]["server_rss_mib"] + series[-1]["postgres_pss_mib"]
    memory["growth_pct"] = round((total_end - total_start) * 100 / total_start, 1) if total_start else None
    return {
        "label": service.label,
        "kind": service.kind,
        "conversations": readers,
        "seconds": seconds,
        "elapsed_s": round(samples["elapsed_s"], 1),
        "counts": counts,
        "turns_per_s": round(counts["turns_done"] / samples["elapsed_s"], 2),
        "added_ttft_ms": ttft | {"n": len(tally.ttft)},
        "pg_connections": {
            "max": max(s["pg_connections"] for s in series),
            "pools_max_sum": service.pool_budget,
        },
        "memory": memory,
        "cpu_ms_per_turn": cpu | {"total": cpu["server"] + cpu["postgres"]},
        "series": series,
    }


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def report(result: dict[str, Any]) -> str:
    """The human-readable table and the peer ratios."""
    budget = result["pool_budget"]
    lines = [f"Machine: {result['machine']}", f"Date: {result['date']}", f"Command: {result['command']}"]
    lines += [f"Load average (1/5/15 min) at start {result['loadavg_start']}, end {result['loadavg_end']}"]
    lines += [
        "Per-address limits raised for the run (all readers are 127.0.0.1): "
        + ", ".join(f"{k}={v}" for k, v in result["settings"]["server_env"].items() if "TURN" in k)
    ]
    lines += [f"Pools' max sizes summed: tutor {budget['tutor']}, langgraph dev {budget['langgraph']}", ""]
    lines += [
        _row(
            "server",
            "conversations",
            "turns done",
            "turns/s",
            "errors",
            "truncated",
            "timeouts",
            "deliberate 503",
            "added TTFT p50 ms",
            "p95",
            "p99",
            "pg conns max / pools",
            "memory MiB (from 1st min → end)",
            "growth",
            "CPU ms/turn server+pg",
        )
    ]
    lines.append("|" + "---|" * 15)
    for run in result["runs"]:
        c, t, m, cpu = run["counts"], run["added_ttft_ms"], run["memory"], run["cpu_ms_per_turn"]
        start = m["server_rss_mib"]["start"] + m["postgres_pss_mib"]["start"]
        end = m["server_rss_mib"]["end"] + m["postgres_pss_mib"]["end"]
        pools = run["pg_connections"]["pools_max_sum"]
        lines.append(
            _row(
                run["label"],
                run["conversations"],
                c["turns_done"],
                run["turns_per_s"],
                c["errors"],
                c["truncated"],
                c["timeouts"],
                c["deliberate_503"],
                t["p50"],
                t["p95"],
                t["p99"],
                f"{run['pg_connections']['max']} / {pools}",
                f"{start:.0f} → {end:.0f}",
                f"{m['growth_pct']}%",
                f"{cpu['server']}+{cpu['postgres']}",
            )
        )
    for run in result["runs"]:
        if run["counts"]["errors"] or run["counts"]["truncated"]:
            lines.append(
                f"{run['label']} at {run['conversations']}: {run['counts']['error_kinds']} "
                f"{run['counts']['error_examples'][:2]}"
            )
    lines += ["", *ratios(result["runs"])]
    return "\n".join(lines) + "\n"


def ratios(runs: list[dict[str, Any]]) -> list[str]:
    """Peer ÷ ours at each load both ran (added TTFT, CPU per turn; errors side by side)."""
    lines = []
    for peer in (r for r in runs if r["kind"] == "langgraph"):
        ours = next(
            (r for r in runs if r["kind"] == "tutor" and r["conversations"] == peer["conversations"]), None
        )
        if ours is None:
            continue
        cells = []
        for name, key in (("added TTFT p50", "p50"), ("p95", "p95"), ("p99", "p99")):
            a, b = peer["added_ttft_ms"][key], ours["added_ttft_ms"][key]
            cells.append(f"{name} {a / b:.1f}×" if a is not None and b else f"{name} n/a")
        a, b = peer["cpu_ms_per_turn"]["total"], ours["cpu_ms_per_turn"]["total"]
        cells.append(f"CPU per turn {a / b:.2f}×" if b else "CPU per turn n/a")
        a, b = peer["counts"]["turns_done"], ours["counts"]["turns_done"]
        cells.append(f"turns done {a / b:.2f}× (TTFT covers finished turns only)" if b else "turns done n/a")
        cells.append(
            f"errors {peer['counts']['errors']} vs {ours['counts']['errors']}, truncated "
            f"{peer['counts']['truncated']} vs {ours['counts']['truncated']}"
        )
        lines.append(f"langgraph dev ÷ ours at {peer['conversations']} conversations: " + ", ".join(cells))
    return lines
