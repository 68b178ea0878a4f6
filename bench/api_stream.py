"""Streaming overhead of the service: time to first token, `POST /chat` throughput, server RSS.

    uv run python bench/api_stream.py [--rounds 3] [--levels 1,10,50] [--rps-seconds 15] [--workers N]
                                      [--checkout DIR: serve another checkout, for before/after runs]

`tutor serve` runs in its own process (embedded Postgres, local Qdrant; a first start builds the model
and ingests the book, the measured server is a restart); the test suite's fake OpenAI server runs in
another, so neither it nor the client is billed to the server. Answers stream 200 tokens, the first
after 300 ms, then one every 20 ms; the title call is answered at once. Each stream is a new thread
in `ask` mode (no classifier, no condense). Levels run twice: as a burst (all streams sent at the same
instant, the worst case) and steady (`--steady-levels`: that many clients streaming back to back, their
starts spread over one stream's length).
added = send → first `token` event − 300 ms; pre-model = send → the fake receiving the answer call
(one monotonic clock), model→client = the rest. Then `POST /chat` with instant answers, with the chat
model and without (extractive), and a burst of `--burst` simultaneous extractive `POST /chat`
(fairness: p50 against the burst's wall time; 503/429 counted as deliberate, apart from errors).
In the same run, the bare-stack baseline (bench/bare_stack.py, its own process, same fake and
pacing) at `--baseline-levels`: our CPU per streamed answer is reported as a ratio to it, pooled
and, for the targets, in `--pairs` alternating batches (bare stack, then ours; median of the
pairs' ratios), since CPU per stream drifts on a shared machine from one minute to the next.
Streams are classified by their `done` event: `grounded` with sources = a model answer, else a
decline (declines stream their sentence as tokens too). The per-address limits are lifted
(`UNLIMITED`): every client is 127.0.0.1. `--workers N` runs `tutor serve --workers N`.
Writes bench/results/api_stream.json and .txt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import multiprocessing as mp
import os
import queue
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bare_stack import BASELINE_PROMPT  # noqa: E402
from core.metrics import percentile  # noqa: E402
from tests.fakes import FakeOpenAI, Json, Text  # noqa: E402

QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "book" / "questions.jsonl").open()]
ANSWER = " ".join("[1]" if i % 40 == 0 else f"word{i}" for i in range(1, 201))  # 200 tokens
FIRST, EVERY, MIB = 0.3, 0.02, 1 << 20
HEADER = (  # times in ms, added = TTFT - 300 ms
    "| streams | n | added TTFT p50 | p95 | pre-model p50 | p95 | model→client p50 | p95 | metadata p50 "
    "| total p50 | p95 | last token→done p50 | CPU ms/stream server+pg | peak server RSS MiB | errors |"
)


def fake_process(conn: Any, streaming: Any, arrivals: Any, stop: Any) -> None:
    """The fake OpenAI server in its own process; reports (tag, arrival) of each answer call."""

    def respond(request: Any) -> Any:
        system = request.system_prompt
        if "patient tutor for a textbook" in system:
            if match := re.search(r"#b(\d+)", json.dumps(request.messages)):
                arrivals.put((int(match[1]), request.started_at))
            return Text(ANSWER, FIRST, EVERY) if streaming.value else Text(ANSWER)
        if BASELINE_PROMPT in system:  # bench/bare_stack.py's one-node graph
            return Text(ANSWER, FIRST, EVERY)
        if "You route a reader" in system:
            return Json({"route": "ask"})
        if "standalone search query" in system:
            return Json({"query": request.last_user_text, "language": "en"})
        return Text("A title")  # title, summary

    with FakeOpenAI() as fake:
        fake.responder = respond
        conn.send(fake.base_url)
        stop.wait()


@contextlib.contextmanager
def fake_model() -> Iterator[tuple[str, Any, Any]]:
    """The fake OpenAI server in a forked process, for as long as the block runs.

    Yields its base URL, the shared flag that switches paced streaming on (1) or off (0), and the
    queue of answer-call arrivals.
    """
    ctx = mp.get_context("fork")
    streaming, arrivals, stop = ctx.Value("i", 1), ctx.Queue(), ctx.Event()
    parent, child = ctx.Pipe()
    fake = ctx.Process(target=fake_process, args=(child, streaming, arrivals, stop), daemon=True)
    fake.start()
    try:
        yield parent.recv(), streaming, arrivals
    finally:
        stop.set()
        fake.join(10)


async def wait_healthy(
    url: str, path: str, proc: subprocess.Popen[Any], what: str, log: str, limit: float
) -> float:
    """Seconds until `url + path` answers 200; raises if `proc` exits first or `limit` passes."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited {proc.returncode}: see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(path)).status_code == 200:
                    return time.monotonic() - started
            if time.monotonic() - started > limit:
                raise TimeoutError(f"{what} did not become healthy")
            await asyncio.sleep(0.5)


# The per-address limits (api.limits) are lifted: every simulated reader comes from 127.0.0.1, and
# the benchmark measures the service, not the anonymous rate limit (300 turns a minute, 60 at once).
UNLIMITED = {"ANONYMOUS_TURN_LIMIT": "0", "CONCURRENT_TURNS_PER_ANONYMOUS_CLIENT": "0"}


class Server:
    """`tutor serve` in its own session.

    `pythons` are its processes (uvicorn, its workers), `postmaster` embedded Postgres.
    """

    def __init__(
        self, home: Path, chat_model: str | None, base_url: str, workers: int = 1, checkout: Path = ROOT
    ) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.home, self.url, self.workers = home, f"http://127.0.0.1:{self.port}", workers
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CHAT_MODEL")}
        env |= {"TUTOR_HOME": str(home), "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "test"}
        env |= {"LLM_MAX_RETRIES": "0"} | ({"CHAT_MODEL": chat_model} if chat_model else {}) | UNLIMITED
        self.log = (home / f"server-{self.port}.log").open("w")
        cmd = ["uv", "run", "tutor", "serve", "--port", str(self.port), "--log-level", "warning"]
        cmd += ["--workers", str(workers)] if workers > 1 else []  # one worker: runs on every branch
        self.proc = subprocess.Popen(
            cmd, cwd=checkout, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.postmaster = psutil.Process(self.proc.pid)
        self.pythons = [self.postmaster]

    async def wait_ready(self, limit: float = 300) -> float:
        started = time.monotonic()
        await wait_healthy(self.url, "/health", self.proc, "server", self.log.name, limit)
        await self._every_worker_answers(started + limit)
        tree = psutil.Process(self.proc.pid).children(recursive=True)
        self.pythons = [p for p in tree if "postgres" not in p.name() and p.name() != "uv"]
        data_dir = str(self.home / "postgres")  # the postmaster's -D (pg_ctl daemonizes it)
        pgs = [p for p in psutil.process_iter(["name", "cmdline"]) if p.info["name"] == "postgres"]
        self.postmaster = next(p for p in pgs if data_dir in " ".join(p.info["cmdline"] or ()))
        return time.monotonic() - started

    async def _every_worker_answers(self, deadline: float) -> None:
        """Wait until each worker has answered `/health` (workers start, and listen, one by one)."""
        answered: set[int] = set()
        while len(answered) < self.workers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only workers {sorted(answered)} answered")
            async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:  # a fresh connection
                answered.add((await client.get("/health")).json()["worker_pid"])
            await asyncio.sleep(0.05)

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by the server, and by the Postgres processes now alive."""
        pg = 0.0
        for p in [self.postmaster, *self.postmaster.children()]:
            with contextlib.suppress(psutil.Error):
                pg += sum(p.cpu_times()[:2])
        server = 0.0
        for p in self.pythons:
            with contextlib.suppress(psutil.Error):
                server += sum(p.cpu_times()[:2])
        return server, pg

    def rss(self) -> float:
        """RSS of the server's processes, summed (MiB)."""
        total = 0.0
        for p in self.pythons:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return round(total / MIB, 1)

    def memory(self) -> dict[str, float]:
        """Server RSS; Postgres (a process per connection): PSS summed over all its processes."""
        procs, pss = [self.postmaster, *self.postmaster.children()], 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                pss += p.memory_full_info().pss / MIB
        return {"server_rss_mib": self.rss(), "postgres_pss_mib": round(pss, 1), "postgres_procs": len(procs)}

    def stop(self) -> None:
        """One SIGINT to the server (SIGTERM, or SIGINT to the whole group, can leave Postgres running)."""
        with contextlib.suppress(psutil.Error):
            self.pythons[0].send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()
        with contextlib.suppress(psutil.Error):
            self.postmaster.wait(10)  # the server stops its embedded Postgres on exit
        if self.postmaster.is_running():
            print(
                f"embedded Postgres {self.postmaster.pid} outlived the server: stopping it", file=sys.stderr
            )
            self.postmaster.terminate()


def stats(values: list[float]) -> dict[str, float]:
    p50, p95 = (round(percentile(values, q), 1) if values else None for q in (50, 95))
    return {"p50": p50, "p95": p95, "n": len(values)}


def cpu_per(before: tuple[float, float], after: tuple[float, float], count: int) -> dict[str, int]:
    server, pg = ((b - a) * 1000 / max(1, count) for a, b in zip(before, after, strict=True))
    return {"server": round(server), "postgres": round(pg)}


def question(n: int) -> dict[str, str]:
    """A book question tagged with its number, so the fake can say when its answer call arrived."""
    return {"message": f"{QUESTIONS[n % len(QUESTIONS)]} #b{n}", "mode": "ask"}


async def one_stream(client: httpx.AsyncClient, n: int) -> dict[str, Any]:
    """Send → first time each event name is seen (ms), the number of `token` events, and the data
    of the `done` or `error` event (what the server says the turn was)."""
    seen: dict[str, float] = {}
    tokens, started, name, end = 0, time.monotonic(), "", None
    last_token = started
    async with client.stream("POST", "/chat/stream", json=question(n)) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                seen.setdefault(name := line[6:].strip(), time.monotonic())
                if name == "token":
                    tokens, last_token = tokens + 1, time.monotonic()
            elif line.startswith("data:") and name in ("done", "error"):
                end = {"event": name, **json.loads(line[5:])}
    ms = {name: (at - started) * 1000 for name, at in seen.items()}
    ms["after_answer"] = (seen["done"] - last_token) * 1000 if "done" in seen else None
    return {"n": n, "sent": started, "ms": ms, "tokens": tokens, "end": end}


def turn_kind(r: Any) -> str:
    """What the server says a stream was: `answered` (the model streamed a grounded answer),
    `declined` (`done` with `grounded: false`: the book does not cover it, no model call), or `error`.

    Declines stream their sentence as tokens too, so the presence of `token` events says nothing.
    """
    end = r.get("end") if isinstance(r, dict) else None
    if not end or end["event"] != "done":
        return "error"
    return "answered" if end.get("grounded") and end.get("sources") else "declined"


async def stream_level(
    server: Server, level: int, rounds: int, ids: Iterator[int], arrivals: Any, steady: float = 0
) -> dict:
    """`level` concurrent streams; server RSS sampled every 100 ms. Burst (`steady` = 0): `rounds`
    rounds of `level` streams started at the same instant, the worst case. Steady: `level` clients
    each streaming back to back for `steady` seconds, their starts spread over one stream's length,
    so `level` streams are always running but arrive at different moments."""
    peak, results, errors, no_tokens = [server.rss()], [], [], 0
    arrived: dict[int, float] = {}  # stream number → when its answer call reached the fake
    pre_model_cpu: list[dict[str, float]] = []  # per burst round, see `until_all_called`

    async def sample() -> None:
        while True:
            peak.append(server.rss())
            await asyncio.sleep(0.1)

    def keep(r: Any) -> None:
        nonlocal no_tokens
        if (kind := turn_kind(r)) == "answered":
            results.append(r)
        elif kind == "declined":
            no_tokens += 1  # answered without a model call ("the book does not cover it")
        else:
            errors.append(repr(r)[:300])

    limits = httpx.Limits(max_connections=level + 10, max_keepalive_connections=level + 10)
    sampler, cpu = asyncio.create_task(sample()), server.cpu()
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
        if steady:
            deadline = time.monotonic() + steady

            async def client_loop(offset: float) -> None:
                await asyncio.sleep(offset)
                while time.monotonic() < deadline:
                    try:
                        keep(await one_stream(client, next(ids)))
                    except Exception as exc:
                        keep(exc)

            stream_s = FIRST + 199 * EVERY
            await asyncio.gather(*(client_loop(i * stream_s / level) for i in range(level)))
        else:
            for _ in range(rounds):
                numbers = [next(ids) for _ in range(level)]
                watcher = asyncio.create_task(until_all_called(server, numbers, arrivals, arrived))
                batch = [one_stream(client, n) for n in numbers]
                for r in await asyncio.gather(*batch, return_exceptions=True):
                    keep(r)
                if watcher.done():
                    pre_model_cpu.append(watcher.result())
                watcher.cancel()  # a declined turn never calls the model: no figure for this round
    sampler.cancel()
    cpu_ms = cpu_per(cpu, server.cpu(), len(results))
    with contextlib.suppress(queue.Empty):
        while item := arrivals.get(timeout=0.5):
            arrived[item[0]] = item[1]
    pre = {r["n"]: (arrived[r["n"]] - r["sent"]) * 1000 for r in results if r["n"] in arrived}
    rest = [r["ms"]["token"] - FIRST * 1000 - pre[r["n"]] for r in results if r["n"] in pre]
    col = lambda name: [r["ms"][name] for r in results if name in r["ms"]]  # noqa: E731
    timings = {"ttft_added": [t - FIRST * 1000 for t in col("token")], "pre_model": list(pre.values())}
    timings |= {"model_to_client_added": rest, "metadata": col("metadata"), "total": col("done")}
    timings["after_answer"] = col("after_answer")  # last token → done: the turn's work after its answer
    tokens = min((r["tokens"] for r in results), default=0)
    out = {"streams": len(results), "error_count": len(errors), "errors": errors[:5], "tokens_min": tokens}
    out["declined"] = no_tokens  # not in the figures; their CPU is billed to the answered streams
    out |= {"cpu_ms_per_stream": cpu_ms, "peak_server_rss_mib": max(peak)}
    if pre_model_cpu:
        out["pre_model_cpu_ms_per_turn"] = {
            key: round(statistics.median(r[key] for r in pre_model_cpu), 1) for key in pre_model_cpu[0]
        }
    return out | {f"{name}_ms": stats(values) for name, values in timings.items()}


async def until_all_called(
    server: Server, numbers: list[int], arrivals: Any, arrived: dict[int, float]
) -> dict[str, float]:
    """CPU per turn from now until the answer calls of all `numbers` reached the fake model.

    For a burst: what the server and Postgres (and this client) spent, per turn, before the last
    turn's answer was asked for. With a first token later than that (`--first-token-s`) no token is
    relayed meanwhile and it is the pre-model cost alone; otherwise early streams' tokens are in it.
    Polls the fake's arrival queue every 5 ms, recording into `arrived`.
    """
    server_cpu, client_cpu, waiting = server.cpu(), time.process_time(), set(numbers)
    while waiting:
        with contextlib.suppress(queue.Empty):
            while True:
                number, at = arrivals.get_nowait()
                arrived[number] = at
                waiting.discard(number)
        if waiting:
            await asyncio.sleep(0.005)
    per_turn = cpu_per(server_cpu, server.cpu(), len(numbers))
    client = (time.process_time() - client_cpu) * 1000 / len(numbers)
    return {"server": per_turn["server"], "postgres": per_turn["postgres"], "client": round(client, 1)}


async def chat_rps(server: Server, seconds: float, concurrency: int, ids: Iterator[int]) -> dict:
    """`POST /chat` from `concurrency` clients in a loop for `seconds`."""
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                (await client.post("/chat", json=question(next(ids)))).raise_for_status()
                latencies.append((time.monotonic() - started) * 1000)
            except httpx.HTTPError as exc:
                errors.append(repr(exc)[:300])

    started, cpu = time.monotonic(), server.cpu()
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    out = {"rps": round(len(latencies) / (time.monotonic() - started), 1), "concurrency": concurrency}
    out |= {"requests": len(latencies), "error_count": len(errors), "errors": errors[:5]}
    return out | {
        "latency_ms": stats(latencies),
        "cpu_ms_per_request": cpu_per(cpu, server.cpu(), len(latencies)),
    }


async def chat_burst(server: Server, size: int, ids: Iterator[int]) -> dict[str, Any]:
    """`size` `POST /chat` sent at the same instant: is the service fair under a burst?

    Fair: early finishers finish early, so the median latency is well under the burst's wall time:
    about half of it at best (equal requests sent together, served one after another, finish evenly
    over the wall time), against ~1 when every request waits for all of them.
    503 and 429 (with Retry-After) are deliberate answers of admission and limits; any other status
    or a failed request is an error.
    """
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    limits = httpx.Limits(max_connections=size + 10, max_keepalive_connections=size + 10)

    async def one(client: httpx.AsyncClient) -> None:
        started = time.monotonic()
        try:
            status = str((await client.post("/chat", json=question(next(ids)))).status_code)
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        statuses[status] = statuses.get(status, 0) + 1
        if status == "200":
            latencies.append((time.monotonic() - started) * 1000)

    cpu = server.cpu()
    async with httpx.AsyncClient(base_url=server.url, timeout=600, limits=limits) as client:
        started = time.monotonic()
        await asyncio.gather(*(one(client) for _ in range(size)))
        wall = (time.monotonic() - started) * 1000
    deliberate = {k: v for k, v in statuses.items() if k in ("503", "429")}
    errors = {k: v for k, v in statuses.items() if k not in ("200", "503", "429")}
    p50 = percentile(latencies, 50) if latencies else None
    out: dict[str, Any] = {"size": size, "ok": statuses.get("200", 0), "wall_ms": round(wall)}
    out |= {"latency_ms": stats(latencies) | {"max": round(max(latencies, default=0), 1)}}
    out |= {"p50_over_wall": round(p50 / wall, 2) if p50 else None, "deliberate": deliberate}
    return out | {"errors": errors, "cpu_ms_per_request": cpu_per(cpu, server.cpu(), len(latencies))}


def bare_stack(base_url: str, streams: int, rounds: int) -> dict[str, Any]:
    """The bare-stack baseline (bench/bare_stack.py) in a process of its own."""
    cmd = [sys.executable, str(ROOT / "bench" / "bare_stack.py"), "--base-url", base_url]
    cmd += ["--streams", str(streams), "--rounds", str(rounds)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


async def paired_cpu(
    server: Server, base_url: str, level: int, pairs: int, ids: Iterator[int], arrivals: Any
) -> dict[str, Any]:
    """Our CPU per streamed answer against the bare stack's, measured side by side, `pairs` times.

    Why: on this shared VM the same batch of streams costs 160-350 ms CPU per stream from one minute
    to the next (host contention; a full GC landing in a batch), more than the difference measured.
    So each pair runs a bare-stack batch (its own process) and ours over the same seconds: ours
    streams rounds of `level` until the bare stack's process ends, and both are billed only their
    own CPU. At one or ten streams each, the two use a fraction of the two cores. The median of the
    pairs' ratios is the figure.
    """
    rounds = max(1, -(-5 // level))  # about five streams per bare batch at one at once, one round at ten
    ours, bare = [], []
    for _ in range(pairs):
        baseline = asyncio.create_task(asyncio.to_thread(bare_stack, base_url, level, rounds))
        before, streams = server.cpu(), 0
        while not baseline.done():
            streams += (await stream_level(server, level, 1, ids, arrivals))["streams"]
        cpu = cpu_per(before, server.cpu(), streams)
        ours.append(cpu["server"] + cpu["postgres"])
        bare.append((await baseline)["cpu_ms_per_stream"])
    ratios = [round(o / b, 2) for o, b in zip(ours, bare, strict=True)]
    out: dict[str, Any] = {"ours_cpu_ms": ours, "bare_cpu_ms": bare, "ratios": ratios}
    return out | {"streams_per_bare_batch": rounds * level, "ratio_median": statistics.median(ratios)}


def git_head(checkout: Path) -> str:
    """The short commit `checkout` is at ("?" outside git)."""
    command = ["git", "rev-parse", "--short", "HEAD"]
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def machine() -> str:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    cores, mem = len(os.sched_getaffinity(0)), psutil.virtual_memory().total / (1 << 30)
    name = cpu[1] if cpu else "?"
    return f"{os.uname().nodename}: {cores} cores, {name}, {mem:.0f} GiB, Python {sys.version.split()[0]}"


async def run(args: argparse.Namespace, base_url: str, streaming: Any, arrivals: Any) -> dict[str, Any]:
    home = Path(args.home or tempfile.mkdtemp(prefix="tutor-apistream-"))
    home.mkdir(parents=True, exist_ok=True)  # a --home that does not exist yet
    ids = itertools.count()
    date = datetime.now(UTC).isoformat(timespec="seconds")
    command = " ".join(["uv run python", *sys.argv])
    result: dict[str, Any] = {"machine": machine(), "date": date, "command": command, "levels": {}}
    result["loadavg_start"] = os.getloadavg()
    result["workers"], result["limits"] = args.workers, UNLIMITED
    result["cores"], result["first_token_s"] = os.cpu_count(), FIRST
    checkout = Path(args.checkout).resolve()
    result["checkout"] = f"{checkout} at {git_head(checkout)}"
    server = Server(home, "openai:gpt-4o-mini", base_url, checkout=checkout)  # first start: builds, ingests
    try:
        result["first_start"] = {"seconds": round(await server.wait_ready(), 1), **server.memory()}
    finally:
        server.stop()
    # measured: a restart, book already indexed
    server = Server(home, "openai:gpt-4o-mini", base_url, args.workers, checkout)
    try:
        result["startup_s"] = round(await server.wait_ready(), 1)
        result["memory_idle"] = server.memory()
        await stream_level(server, min(10, max(args.levels)), 1, ids, arrivals)  # warm-up
        result["memory_warm"] = server.memory()
        result["baseline"] = {}
        for level in args.baseline_levels:  # same rounds as the server's level, while it idles
            rounds = max(args.rounds, -(-args.min_samples // level))
            result["baseline"][str(level)] = b = bare_stack(base_url, level, rounds)
            print(f"bare stack, {level} at once: {b['cpu_ms_per_stream']} CPU ms/stream", file=sys.stderr)
        result["paired"] = {}
        for level in args.baseline_levels if args.pairs else ():
            result["paired"][str(level)] = p = await paired_cpu(
                server, base_url, level, args.pairs, ids, arrivals
            )
            print(f"paired, {level} at once: {p['ratios']}", file=sys.stderr)
        for level in args.levels:
            rounds = max(args.rounds, -(-args.min_samples // level))
            result["levels"][str(level)] = r = await stream_level(server, level, rounds, ids, arrivals)
            print(f"{level} streams: added TTFT {r['ttft_added_ms']}", file=sys.stderr)
        for level in args.steady_levels:
            r = await stream_level(server, level, 0, ids, arrivals, steady=args.steady_seconds)
            result["levels"][f"{level} steady"] = r
            print(f"{level} steady streams: added TTFT {r['ttft_added_ms']}", file=sys.stderr)
        result["memory_after_streams"] = server.memory()
        streaming.value = 0  # instant answers from here on
        await chat_rps(server, 2, args.rps_concurrency, ids)  # warm-up
        result["chat"] = await chat_rps(server, args.rps_seconds, args.rps_concurrency, ids)
    finally:
        server.stop()
    if args.extractive:
        server = Server(home, None, base_url, args.workers, checkout)
        try:
            await server.wait_ready()
            await chat_rps(server, 2, args.rps_concurrency, ids)
            result["chat_extractive"] = await chat_rps(server, args.rps_seconds, args.rps_concurrency, ids)
            if args.burst:
                result["burst"] = r = await chat_burst(server, args.burst, ids)
                print(f"burst of {args.burst}: {r['latency_ms']}, wall {r['wall_ms']} ms", file=sys.stderr)
        finally:
            server.stop()
    result["loadavg_end"] = os.getloadavg()
    return result


def row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def report(result: dict[str, Any]) -> str:
    lines = [f"Machine: {result['machine']}", f"Date: {result['date']}", f"Command: {result['command']}"]
    lines.append(f"Served checkout: {result.get('checkout', '?')}")
    lines += [f"Load average (1/5/15 min) at start {result['loadavg_start']}, end {result['loadavg_end']}"]
    lines += [f"First start (build model, ingest book): {result['first_start']}"]
    lines += [f"Measured server: a restart, {result['workers']} worker(s), ready in {result['startup_s']} s"]
    lines += [f"Per-address limits lifted ({result['limits']}): all clients share 127.0.0.1, and this"]
    lines += ["measures the service, not the anonymous rate limit.", "", HEADER, "|" + "---|" * 15]
    for level, r in result["levels"].items():
        cells = [level, r["streams"]]
        for key in ("ttft_added_ms", "pre_model_ms", "model_to_client_added_ms", "metadata_ms", "total_ms"):
            cells += [r[key]["p50"]] if key == "metadata_ms" else [r[key]["p50"], r[key]["p95"]]
        cells += [r.get("after_answer_ms", {}).get("p50")]
        cpu = r["cpu_ms_per_stream"]
        cells += [f"{cpu['server']}+{cpu['postgres']}", r["peak_server_rss_mib"], r["error_count"]]
        lines.append(row(*cells))
    lines += ["", row("POST /chat", "req/s", "p50 ms", "p95 ms", "CPU ms/req server+pg", "errors")]
    lines.append("|" + "---|" * 6)
    for key in ("chat", "chat_extractive"):
        if r := result.get(key):
            lat, cpu = r["latency_ms"], r["cpu_ms_per_request"]
            name, cpu_ms = f"{key}, {r['concurrency']} clients", f"{cpu['server']}+{cpu['postgres']}"
            lines.append(row(name, r["rps"], lat["p50"], lat["p95"], cpu_ms, r["error_count"]))
    lines += ["", *baseline_lines(result)]
    if burst := result.get("burst"):
        lat = burst["latency_ms"]
        lines += ["", f"Burst: {burst['size']} simultaneous extractive POST /chat: {burst['ok']} ok in "]
        lines[-1] += (
            f"{burst['wall_ms']} ms wall; latency p50 {lat['p50']} p95 {lat['p95']} max {lat['max']} ms;"
        )
        best = "fair: ~0.5 is the best for equal requests sent together, ~1 unfair"
        lines += [f"p50/wall {burst['p50_over_wall']} ({best}); deliberate 503/429 "]
        lines[-1] += (
            f"{burst['deliberate']}; errors {burst['errors'] or 0}; CPU ms/req {burst['cpu_ms_per_request']}"
        )
    lines += ["", *(f"{k}: {result[k]}" for k in ("memory_idle", "memory_warm", "memory_after_streams"))]
    lines += pre_model_lines(result)
    if (fifty := result["levels"].get("50")) and (p95 := fifty["ttft_added_ms"]["p95"]) is not None:
        verdict = "met" if p95 <= 300 else "MISSED"
        lines.append(f"Target p95 added TTFT <= 300 ms at 50 streams (issue 15: on 2 workers): {verdict}")
    for name in ("10", "10 steady"):
        if (ten := result["levels"].get(name)) and (p95 := ten["ttft_added_ms"]["p95"]) is not None:
            verdict = "met" if p95 <= 100 else "MISSED"
            lines.append(f"Target p95 added TTFT <= 100 ms at {name} streams: {verdict}")
    return "\n".join(lines) + "\n"


# Issue 15's targets: our server's CPU per streamed answer over the bare stack's, by streams at once.
RATIO_TARGETS = {"1": 1.15, "10": 0.7}


def pre_model_lines(result: dict[str, Any]) -> list[str]:
    """Each burst level's CPU before its last answer call, and the p95 it implies on this machine.

    Turns of a burst share the machine's cores: however they are scheduled, the k-th turn to reach
    the model waits for at least k turns' pre-model CPU spread over the cores. So the p95 of added
    time to first token cannot be below ceil(0.95 n) × (server + Postgres CPU per turn) / cores.
    A low bound: each process's CPU time is counted in whole 10 ms ticks, so with ~40 Postgres
    backends the Postgres figure reads a few ms per turn low; the client's CPU is not in it.
    """
    lines, cores = [], result.get("cores") or os.cpu_count() or 1
    for level, r in result["levels"].items():
        # One turn's CPU is below the 10 ms a process's CPU time is counted in: small bursts say nothing.
        if (cpu := r.get("pre_model_cpu_ms_per_turn")) is None or "steady" in level or int(level) < 10:
            continue
        k = math.ceil(0.95 * int(level))
        floor = k * (cpu["server"] + cpu["postgres"]) / cores
        lines.append(
            f"{level} at once, CPU per turn until the last answer call: server {cpu['server']} + Postgres "
            f"{cpu['postgres']} ms (client {cpu['client']}); p95 cannot be below {k} x that / {cores} "
            f"cores = {floor:.0f} ms (measured p95 pre-model {r['pre_model_ms']['p95']} ms)"
        )
    return (
        ["", "Burst floor (first token after {:g} s):".format(result.get("first_token_s", FIRST)), *lines]
        if lines
        else []
    )


def baseline_lines(result: dict[str, Any]) -> list[str]:
    """Our CPU per streamed 200-token answer beside the bare stack's (bench/bare_stack.py), as ratios.

    The targets are judged on the paired batches (`paired_cpu`: medians of alternating batches);
    the pooled figures of the level runs, against a bare stack measured minutes before, are shown
    too. Two ratios: to the bare stack at the same number of streams at once, and to its one-stream
    figure (the issue's figures — 0.81x today with ten at once — compare with that one).
    """
    head = ("streams at once", "bare stack CPU ms/stream", "ours server+pg", "ratio, same level")
    lines = [row(*head, "ratio to 1-stream bare stack", "target"), "|" + "---|" * 6]
    single = result.get("baseline", {}).get("1", {}).get("cpu_ms_per_stream")
    for level, base in result.get("baseline", {}).items():
        if (ours := result["levels"].get(level)) is None:
            continue
        cpu = ours["cpu_ms_per_stream"]
        ratio = (cpu["server"] + cpu["postgres"]) / base["cpu_ms_per_stream"]
        to_single = (cpu["server"] + cpu["postgres"]) / single if single else None
        ours["ratio_to_bare_stack"] = round(ratio, 2)
        ours["ratio_to_single_bare_stack"] = round(to_single, 2) if to_single else None
        ours_cpu = f"{cpu['server']}+{cpu['postgres']}"
        lines.append(
            row(
                f"{level} (pooled)",
                base["cpu_ms_per_stream"],
                ours_cpu,
                f"{ratio:.2f}",
                f"{to_single:.2f}",
                "",
            )
        )
    single_bare = result.get("paired", {}).get("1", {}).get("bare_cpu_ms")
    for level, pair in result.get("paired", {}).items():
        if single_bare:  # the ten-at-once target compares with the one-stream bare stack
            pair["to_single_median"] = round(
                statistics.median(pair["ours_cpu_ms"]) / statistics.median(single_bare), 2
            )
        else:
            pair["to_single_median"] = float("nan")
        judged = pair["ratio_median"] if level == "1" else pair["to_single_median"]
        target = RATIO_TARGETS.get(level)
        verdict = "" if target is None else f"<= {target}: " + ("met" if judged <= target else "MISSED")
        bare, ours = statistics.median(pair["bare_cpu_ms"]), statistics.median(pair["ours_cpu_ms"])
        name = f"{level} (paired, median of {len(pair['ratios'])})"
        lines.append(
            row(name, bare, ours, f"{pair['ratio_median']:.2f}", f"{pair['to_single_median']:.2f}", verdict)
        )
    if paired := result.get("paired"):
        lines += ["", "Paired batches (bare stack and ours over the same seconds; CPU ms per stream):"]
        lines += [
            f"- {level} at once: ours {p['ours_cpu_ms']}, bare {p['bare_cpu_ms']}"
            for level, p in paired.items()
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-samples", type=int, default=10, help="extra rounds for small levels")
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10, 50])
    parser.add_argument("--steady-levels", type=lambda s: [int(x) for x in s.split(",") if x], default=[10])
    parser.add_argument("--steady-seconds", type=float, default=30)
    parser.add_argument("--rps-seconds", type=float, default=15)
    parser.add_argument("--rps-concurrency", type=int, default=10)
    parser.add_argument("--no-extractive", dest="extractive", action="store_false")
    parser.add_argument("--home", help="TUTOR_HOME to reuse (default: a new temporary one)")
    parser.add_argument("--workers", type=int, default=1, help="`tutor serve --workers N`")
    parser.add_argument("--burst", type=int, default=200, help="simultaneous extractive POST /chat (0: none)")
    parser.add_argument(
        "--baseline-levels", type=lambda s: [int(x) for x in s.split(",") if x], default=[1, 10]
    )
    parser.add_argument("--pairs", type=int, default=5, help="alternating bare/ours CPU batches (0: none)")
    parser.add_argument(
        "--checkout",
        default=str(ROOT),
        help="the checkout whose `tutor serve` is measured (e.g. a `git worktree` of an earlier commit, "
        "for a before/after run on the same machine); the client, fake model and bare stack stay this one's",
    )
    parser.add_argument(
        "--first-token-s",
        type=float,
        default=0.3,
        help="when the fake sends an answer's first token (default 0.3 s); later than a burst's "
        "pre-model work (e.g. 5) isolates its CPU: no tokens are relayed meanwhile",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "api_stream"))
    args = parser.parse_args()
    globals()["FIRST"] = args.first_token_s  # before the fake starts: it paces with this
    with fake_model() as (base_url, streaming, arrivals):
        result = asyncio.run(run(args, base_url, streaming, arrivals))
    print(text := report(result))
    Path(args.out + ".json").write_text(json.dumps(result, indent=2) + "\n")
    Path(args.out + ".txt").write_text(text)


if __name__ == "__main__":
    main()
