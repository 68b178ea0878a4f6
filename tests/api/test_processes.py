"""Two `tutor serve` processes sharing one Postgres (each with its own Qdrant folder: local mode is
one process) carry the same conversation, and concurrent turns across them lose nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.embeddings.local import LocalMiniLMEmbeddings
from tests.api.conftest import SECRET
from tests.api.faults import wait_healthy
from tests.conftest import BOOK

PAGES = ["01-module-1-ros2"]  # a part of the book is enough, and quick to index twice


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def servers(pg_url: str, tmp_path: Path, embeddings: LocalMiniLMEmbeddings) -> Iterator[list[str]]:
    book = tmp_path / "book"
    for page in PAGES:
        shutil.copytree(BOOK / page, book / page)
    processes, urls = [], []
    for name in ("a", "b"):
        port = _free_port()
        env = {
            **os.environ,
            "TUTOR_HOME": str(tmp_path / name),
            "DATABASE_URL": pg_url,
            # Each its own local folder (the external test Postgres has no pgvector).
            "VECTOR_STORE": "qdrant",
            "MODELS_DIR": str(embeddings.onnx_path.parent),  # built once per session
            "BOOK_PATH": str(book),
            "JWT_SECRET": SECRET,
        }
        tutor = str(Path(sys.executable).parent / "tutor")
        command = [tutor, "serve", "--port", str(port), "--log-level", "warning"]
        processes.append(subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, process in zip(urls, processes, strict=True):
            wait_healthy(url, process, process.stderr.read if process.stderr else str)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


async def test_two_processes_continue_one_conversation(servers: list[str]) -> None:
    a, b = (httpx.AsyncClient(base_url=url, timeout=60) for url in servers)
    thread = str(uuid.uuid4())
    headers = {"X-Thread-Id": thread}
    try:
        first = await a.post("/chat", json={"message": "What does a ROS 2 topic do?"}, headers=headers)
        assert first.status_code == 200, first.text
        second = await b.post("/chat", json={"message": "and what is a service?"}, headers=headers)
        assert second.status_code == 200 and second.json()["thread_id"] == thread
        # Several turns at once, split over both processes: each waits its turn, none is lost.
        turns = [
            (a if i % 2 else b).post("/chat", json={"message": f"What is a node? ({i})"}, headers=headers)
            for i in range(6)
        ]
        assert [r.status_code for r in await asyncio.gather(*turns)] == [200] * 6
        for client in (a, b):
            messages = (await client.get(f"/threads/{thread}")).json()["messages"]
            assert [m["seq"] for m in messages] == list(range(1, 17))
    finally:
        await a.aclose()
        await b.aclose()
