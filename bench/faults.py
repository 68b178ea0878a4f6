"""Faults, timed: Postgres going away and coming back, and a server killed in the middle of a turn.

    uv run python bench/faults.py [--skip-outage] [--skip-kill]

`tutor serve` runs as a subprocess on an embedded Postgres of its own (never the machine's shared
one), with one part of the sample book. Outage: one committed turn, then Postgres is stopped (fast
shutdown, as a hosted database restarting) and `POST /chat` and `GET /health` are timed while it is
down; it is started again and both are polled (every 100 ms) until they answer 200; the committed
turn must still be there. Kill: a streamed turn is held open (the fake OpenAI server answers after
60 s), the server is `kill -9`ed, the lease left on the thread (`busy_until - now()`) is read from
Postgres, a new server is started, and a turn on the thread is retried until it is served.
Writes bench/results/faults.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.api.faults import StoppablePostgres, TutorProcess  # noqa: E402
from tests.fakes import FakeOpenAI, Json, Text  # noqa: E402

PAGE = ROOT / "book" / "docs" / "01-module-1-ros2"
QUESTION = {"message": "What does a ROS 2 topic do?"}


def timed(client: httpx.Client, method: str, path: str, **kwargs: Any) -> tuple[float, int, str]:
    """One request on a connection of its own (a failed request may leave a pooled one closed)."""
    started = time.monotonic()
    try:
        response = httpx.request(method, f"{client.base_url}{path}", timeout=180, **kwargs)
        status, body = response.status_code, response.text[:120]
    except httpx.HTTPError as exc:
        status, body = 0, type(exc).__name__
    return time.monotonic() - started, status, body


def poll_until_ok(client: httpx.Client, method: str, path: str, since: float, **kwargs: Any) -> float:
    while True:
        _, status, _ = timed(client, method, path, **kwargs)
        if status == 200:
            return time.monotonic() - since
        time.sleep(0.1)


def outage(pg: StoppablePostgres, env: dict[str, str], work: Path, lines: list[str]) -> None:
    server = TutorProcess(env, work / "outage.log").start()
    try:
        with httpx.Client(base_url=server.url, timeout=180) as client:
            thread = str(uuid.uuid4())
            first = client.post("/chat", json=QUESTION, headers={"X-Thread-Id": thread})
            assert first.status_code == 200, first.text
            pg.stop()
            chat = timed(client, "POST", "/chat", json=QUESTION)
            health = timed(client, "GET", "/health")
            lines.append(f"Postgres down: POST /chat answered {chat[1]} in {chat[0]:.2f} s ({chat[2]})")
            lines.append(f"Postgres down: GET /health answered {health[1]} in {health[0]:.2f} s")
            time.sleep(3)  # down for a while, as in a real restart
            pg.start()
            back = time.monotonic()
            results: dict[str, float] = {}

            def poll(name: str, method: str, path: str, **kwargs: Any) -> None:
                with httpx.Client(base_url=server.url, timeout=180) as own:
                    results[name] = poll_until_ok(own, method, path, back, **kwargs)

            pollers = [
                threading.Thread(target=poll, args=("health", "GET", "/health")),
                threading.Thread(target=poll, args=("chat", "POST", "/chat"), kwargs={"json": QUESTION}),
            ]
            for poller in pollers:
                poller.start()
            for poller in pollers:
                poller.join()
            lines.append(f"Postgres back: GET /health 200 after {results['health']:.2f} s")
            lines.append(f"Postgres back: POST /chat 200 after {results['chat']:.2f} s")
            messages = client.get(f"/threads/{thread}").json()["messages"]
            lines.append(f"committed turn kept: {len(messages) == 2} ({len(messages)} messages)")
    finally:
        server.stop()


async def _hold_turn(url: str, thread: str) -> None:
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            async with client.stream("POST", "/chat/stream", json={**QUESTION, "thread_id": thread}) as r:
                async for _ in r.aiter_lines():
                    pass


def killed(pg: StoppablePostgres, env: dict[str, str], work: Path, lines: list[str], max_wait: float) -> None:
    with FakeOpenAI() as fake:

        def respond(request: Any) -> Any:
            system = request.system_prompt
            if "patient tutor for a textbook" in system:
                return Text("Topics carry messages [1].", first_token_delay=60)
            if "You route a reader" in system:
                return Json({"route": "ask"})
            if "standalone search query" in system:
                return Json({"query": request.last_user_text, "language": "en"})
            return Text("A title")

        fake.responder = respond
        model_env = {**env, "CHAT_MODEL": "openai:gpt-4o-mini", "OPENAI_BASE_URL": fake.base_url}
        model_env |= {"OPENAI_API_KEY": "test", "LLM_MAX_RETRIES": "0"}
        server = TutorProcess(model_env, work / "kill.log").start()
        thread = str(uuid.uuid4())
        holder = threading.Thread(target=asyncio.run, args=(_hold_turn(server.url, thread),), daemon=True)
        holder.start()
        deadline = time.monotonic() + 30
        while not any("patient tutor" in r.system_prompt for r in fake.chat_requests):
            assert time.monotonic() < deadline, "the turn never reached the model"
            time.sleep(0.05)
        server.kill()
        killed_at = time.monotonic()
        with psycopg.connect(pg.url) as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM busy_until - now()) FROM threads WHERE thread_id = %s", (thread,)
            ).fetchone()
        left = float(row[0]) if row and row[0] is not None else 0.0
        lines.append(f"kill -9 mid-turn: lease left on the thread {left:.1f} s")
        fake.responder = lambda r: Text("Answered.") if "patient tutor" in r.system_prompt else respond(r)
        restarted = TutorProcess(model_env, work / "kill.log", port=server.port).start()
        try:
            lines.append(f"restarted server healthy after {time.monotonic() - killed_at:.1f} s")
            with httpx.Client(base_url=restarted.url, timeout=180) as client:
                while True:
                    response = client.post("/chat", json=QUESTION, headers={"X-Thread-Id": thread})
                    if response.status_code != 409 or time.monotonic() - killed_at > max_wait:
                        break
                after = time.monotonic() - killed_at
                lines.append(
                    f"first turn on the killed thread after the kill: {response.status_code} at {after:.1f} s"
                )
        finally:
            restarted.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-outage", action="store_true")
    parser.add_argument("--skip-kill", action="store_true")
    parser.add_argument(
        "--max-wait", type=float, default=120, help="Stop retrying the killed thread after this long."
    )
    parser.add_argument("--output", default="faults.txt", help="File name under bench/results.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="faults-"))
    book = work / "book"
    shutil.copytree(PAGE, book / PAGE.name)
    pg = StoppablePostgres(work / "pg")
    env = {"TUTOR_HOME": str(work / "home"), "DATABASE_URL": pg.url, "BOOK_PATH": str(book)}
    env |= {"MODELS_DIR": str(work / "models"), "JWT_SECRET": "bench-secret-that-is-long-enough-32b"}
    lines: list[str] = []
    try:
        if not args.skip_outage:
            outage(pg, env, work, lines)
        if not args.skip_kill:
            killed(pg, env, work, lines, args.max_wait)
    finally:
        pg.close()
        print("\n".join(lines), flush=True)
    if lines:
        (ROOT / "bench" / "results" / args.output).write_text("\n".join(lines) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
