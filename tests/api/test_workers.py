"""`tutor serve --workers 2` in single-database mode, from outside: one embedded Postgres (book vectors
in pgvector) shared by two worker processes, both of which answer; connections spread evenly over
them; a killed worker is replaced while the other serves; workers leave with their supervisor; a port
in use and embedded Qdrant are refused.

One server for the module (each start costs ~20 s); the test that kills the supervisor runs last.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from core.embeddings.local import LocalMiniLMEmbeddings
from tests.api.conftest import SECRET
from tests.api.faults import TutorProcess, free_port, wait_healthy
from tests.api.test_limits import slow_answers
from tests.conftest import BOOK
from tests.fakes import FakeOpenAI

TUTOR = str(Path(sys.executable).parent / "tutor")
PAGES = ["01-module-1-ros2"]  # part of the book: quick to index


def _env(home: Path, embeddings: LocalMiniLMEmbeddings, **extra: str) -> dict[str, str]:
    book = home / "book"
    for page in PAGES:
        shutil.copytree(BOOK / page, book / page, dirs_exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "QDRANT_URL"}}
    return {
        **env,
        "TUTOR_HOME": str(home / ".tutor"),  # its own embedded Postgres
        "MODELS_DIR": str(embeddings.onnx_path.parent),  # built once per session
        "BOOK_PATH": str(book),
        "JWT_SECRET": SECRET,
        **extra,
    }


def worker_pids(server: psutil.Process) -> set[int]:
    """The server's worker processes (spawned by `cli.workers.Supervisor`)."""
    return {c.pid for c in server.children() if "multiprocessing-fork" in " ".join(c.cmdline())}


@pytest.fixture(scope="module")
def two_workers(
    tmp_path_factory: pytest.TempPathFactory, embeddings: LocalMiniLMEmbeddings
) -> Iterator[tuple[str, psutil.Process]]:
    home = tmp_path_factory.mktemp("workers")
    port = free_port()
    env = _env(home, embeddings, VECTOR_STORE="pgvector")
    log_path = home / "serve.log"
    log = log_path.open("w")
    command = [TUTOR, "serve", "--workers", "2", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log_path.read_text, 180)
        server = psutil.Process(process.pid)
        deadline = time.monotonic() + 120  # the second worker may still be checking the book
        while len(worker_pids(server)) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        yield url, server
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def listening_sockets(server: psutil.Process, port: int) -> set[str]:
    """The distinct sockets (by inode) the workers listen on at `port`."""
    found = set()
    for pid in worker_pids(server):
        for conn in psutil.Process(pid).net_connections():
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                found.add(os.readlink(f"/proc/{pid}/fd/{conn.fd}"))  # socket:[inode]
    return found


def answered_by(url: str, workers: set[int], limit: float = 120) -> set[int]:
    """Ask `/health` on fresh connections until each of `workers` has answered (or `limit` passes)."""
    answered: set[int] = set()
    deadline = time.monotonic() + limit  # a worker may still be starting
    while not workers <= answered and time.monotonic() < deadline:
        body = httpx.get(f"{url}/health", timeout=10).json()
        if body["status"] == "ok":
            assert body["vector_backend"] == "pgvector" and body["index"]["chunks"] > 0
            answered.add(body["worker_pid"])
    return answered


def test_two_workers_share_one_embedded_postgres(two_workers: tuple[str, psutil.Process]) -> None:
    url, server = two_workers
    workers = worker_pids(server)
    assert len(workers) == 2
    # A fresh connection each time: the kernel spreads new connections over the workers.
    assert answered_by(url, workers) == workers
    assert len(listening_sockets(server, int(url.rsplit(":", 1)[1]))) == 2  # a socket each
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(4):
            question = {"message": "What does a ROS 2 topic do?"}
            response = client.post("/chat", json=question, headers={"Connection": "close"})
            assert response.status_code == 200 and "topic" in response.json()["response"], response.text


async def test_connections_arriving_together_spread_over_both_workers(
    two_workers: tuple[str, psutil.Process],
) -> None:
    """Five rounds of 40 connections opened at once by one client. Under uvicorn's shared listening
    socket every run of this had a round where one worker took 36-40 (the first awake accepts all
    that wait); with a socket per worker the kernel hashes them (here 13-27 each; below 8 has a
    chance of ~2e-5 a round)."""
    url, server = two_workers
    for _ in range(5):
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=40)) as c:
            responses = await asyncio.gather(*(c.get("/health") for _ in range(40)))
        served = Counter(r.json()["worker_pid"] for r in responses)
        assert set(served) == worker_pids(server) and min(served.values()) >= 8, served


def test_a_killed_worker_is_replaced_while_the_other_serves(two_workers: tuple[str, psutil.Process]) -> None:
    url, server = two_workers
    victim, survivor = sorted(worker_pids(server))
    os.kill(victim, signal.SIGKILL)
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(victim).wait(10)
    for _ in range(10):  # its socket went with it: every new connection reaches the survivor
        response = httpx.get(f"{url}/health", timeout=10)
        assert response.status_code == 200 and response.json()["worker_pid"] == survivor
    deadline = time.monotonic() + 30
    while len(worker_pids(server)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    replacement = worker_pids(server) - {survivor}
    assert len(replacement) == 1 and victim not in replacement
    assert answered_by(url, worker_pids(server)) == {survivor, *replacement}


async def test_a_worker_holding_more_turns_borrows_the_idle_workers_places(
    tmp_path: Path, embeddings: LocalMiniLMEmbeddings
) -> None:
    """TURN_CONCURRENCY=1 on two workers, three keep-alive connections pinned to one worker, three
    slow answers at once: two start together (its own place and one borrowed from the idle worker,
    the ceiling), the third when one ends. Without borrowing the second waited a whole answer."""
    with FakeOpenAI() as fake:
        fake.responder = slow_answers(3.0)
        env = _env(tmp_path, embeddings, VECTOR_STORE="pgvector", TURN_CONCURRENCY="1")
        env |= {"CHAT_MODEL": "openai:gpt-4o-mini", "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "t"}
        env |= {"ANONYMOUS_TURN_LIMIT": "0", "CONCURRENT_TURNS_PER_ANONYMOUS_CLIENT": "0"}
        server = TutorProcess(env, tmp_path / "serve.log", workers=2)
        server.start()
        try:
            await _three_on_one_worker(server.url, fake)
        finally:
            server.stop()


async def _three_on_one_worker(url: str, fake: FakeOpenAI) -> None:
    by_worker: dict[int, list[httpx.AsyncClient]] = {}
    one = httpx.Limits(max_connections=1)
    try:
        while max((len(v) for v in by_worker.values()), default=0) < 3:  # one connection per client
            client = httpx.AsyncClient(base_url=url, timeout=60, limits=one)
            pid = (await client.get("/health")).json()["worker_pid"]
            by_worker.setdefault(pid, []).append(client)
        pinned = max(by_worker.values(), key=len)[:3]

        async def ask(client: httpx.AsyncClient, n: int) -> str:
            question = {"message": f"What does a ROS 2 topic do? ({n})", "mode": "ask"}
            async with client.stream("POST", "/chat/stream", json=question) as response:
                assert response.status_code == 200
                return "".join([part async for part in response.aiter_text()])

        sent = time.monotonic()
        bodies = await asyncio.gather(*(ask(client, n) for n, client in enumerate(pinned)))
        assert all("event: done" in body for body in bodies)
    finally:
        for clients in by_worker.values():
            for client in clients:
                await client.aclose()
    answers = sorted(
        r.started_at - sent for r in fake.requests if "patient tutor for a textbook" in r.system_prompt
    )
    assert len(answers) == 3
    assert answers[1] < 2.0, answers  # borrowed: started with the first, not after its 3 s answer
    assert answers[2] > answers[0] + 2.5, answers  # the ceiling: the third waited for a place


def test_where_the_kernel_does_not_balance_the_workers_share_one_socket(
    tmp_path: Path, embeddings: LocalMiniLMEmbeddings
) -> None:
    """macOS and the BSDs give every connection to one `SO_REUSEPORT` socket (`cli.workers.BALANCED`
    is False there): the workers then share one listening socket, and both serve."""
    port = free_port()
    env = _env(tmp_path, embeddings, VECTOR_STORE="pgvector")
    start = "import sys, cli.workers as w; w.BALANCED = False; from cli.main import main; sys.exit(main())"
    command = [sys.executable, "-c", start, "serve", "--workers", "2", "--port", str(port)]
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log_path.read_text, 180)
        server = psutil.Process(process.pid)
        deadline = time.monotonic() + 120
        while len(worker_pids(server)) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert answered_by(url, worker_pids(server)) == worker_pids(server)
        assert len(listening_sockets(server, port)) == 1  # one socket, in both workers
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_a_port_in_use_is_refused(tmp_path: Path, embeddings: LocalMiniLMEmbeddings) -> None:
    """`SO_REUSEPORT` would let the workers share a forgotten server's port: refused up front instead."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [TUTOR, "serve", "--workers", "2", "--port", str(port)]
        env = _env(tmp_path, embeddings, VECTOR_STORE="pgvector")
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "already in use" in " ".join(done.stderr.split()), done.stderr
    assert "Traceback" not in done.stderr


def test_embedded_qdrant_refuses_several_workers(tmp_path: Path, embeddings: LocalMiniLMEmbeddings) -> None:
    env = _env(tmp_path, embeddings, VECTOR_STORE="qdrant")
    command = [TUTOR, "serve", "--workers", "2", "--port", str(free_port())]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "one process" in message and "VECTOR_STORE=pgvector" in message and "QDRANT_URL" in message


def test_workers_leave_with_their_supervisor(two_workers: tuple[str, psutil.Process]) -> None:
    """`kill -9` of the supervisor: its workers stop (gracefully) instead of serving on as orphans.

    Last in the module: it ends the shared server.
    """
    url, server = two_workers
    workers = [psutil.Process(pid) for pid in worker_pids(server)]
    server.kill()
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=5)
