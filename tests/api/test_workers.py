"""`tutor serve --workers 2` in single-database mode, from outside: one embedded Postgres (book vectors
in pgvector) shared by two worker processes, both of which answer; embedded Qdrant refuses N > 1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from core.embeddings.local import LocalMiniLMEmbeddings
from tests.api.conftest import SECRET
from tests.api.faults import free_port
from tests.conftest import BOOK

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


@pytest.fixture
def two_workers(tmp_path: Path, embeddings: LocalMiniLMEmbeddings) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    env = _env(tmp_path, embeddings, VECTOR_STORE="pgvector")
    log = (tmp_path / "serve.log").open("w")
    command = [TUTOR, "serve", "--workers", "2", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError(f"no healthy worker: {(tmp_path / 'serve.log').read_text()}")
        yield url, psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_two_workers_share_one_embedded_postgres(two_workers: tuple[str, psutil.Process]) -> None:
    url, server = two_workers
    workers = {
        child.pid for child in server.children() if "multiprocessing-fork" in " ".join(child.cmdline())
    }
    assert len(workers) == 2
    answered: set[int] = set()
    with httpx.Client(base_url=url, timeout=60) as client:
        deadline = time.monotonic() + 120  # the second worker may still be checking the book
        while answered != workers and time.monotonic() < deadline:
            # A fresh connection each time: the kernel spreads new connections over the workers.
            body = httpx.get(f"{url}/health", timeout=10).json()
            if body["status"] == "ok":
                assert body["vector_backend"] == "pgvector" and body["index"]["chunks"] > 0
                answered.add(body["worker_pid"])
        assert answered == workers
        for _ in range(4):
            question = {"message": "What does a ROS 2 topic do?"}
            response = client.post("/chat", json=question, headers={"Connection": "close"})
            assert response.status_code == 200 and "topic" in response.json()["response"], response.text


def test_embedded_qdrant_refuses_several_workers(tmp_path: Path, embeddings: LocalMiniLMEmbeddings) -> None:
    env = _env(tmp_path, embeddings, VECTOR_STORE="qdrant")
    command = [TUTOR, "serve", "--workers", "2", "--port", str(free_port())]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "one process" in message and "VECTOR_STORE=pgvector" in message and "QDRANT_URL" in message
