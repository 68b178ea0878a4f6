"""Things that break on purpose, for the fault tests and `bench/faults.py`.

`StoppablePostgres` is an embedded PostgreSQL (pgserver) of its own in a temp folder, stopped and
started again with pgserver's `pg_ctl`: never the machine's shared server, which other runs use.
`TutorProcess` is a `tutor serve` subprocess that can be `kill -9`ed and started again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


class StoppablePostgres:
    """An embedded Postgres under `data_dir` that a test may stop and start at will."""

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

        # cleanup_mode=None: this object, not pgserver's exit hook, decides when the server stops.
        self.server: Any = pgserver.get_server(data_dir, cleanup_mode=None)
        self.data_dir = Path(self.server.pgdata)
        info = self.server.get_postmaster_info()
        self.socket_dir, self.url = info.socket_dir, self.server.get_uri()

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", *args], pgdata=self.data_dir, user=self.server.system_user, timeout=30)

    def stop(self) -> None:
        """Fast shutdown: every open connection is cut, as when a hosted database restarts."""
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        """Start again on the same socket, so the URL the server holds is valid again."""
        log = str(self.data_dir / "log")
        self._pg_ctl("-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", log, "start")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(
    url: str, process: subprocess.Popen[Any], log: Callable[[], str], timeout: float = 120
) -> None:
    """Until `url`/health answers 200; fails with `log()` if `process` exits first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not become healthy: {log()}")


class TutorProcess:
    """`tutor serve` in a subprocess of its own session (so `kill -9` takes it alone)."""

    def __init__(
        self, env: dict[str, str], log_path: Path, port: int | None = None, workers: int = 1
    ) -> None:
        self.env, self.log_path, self.workers = env, log_path, workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> TutorProcess:
        tutor = str(Path(sys.executable).parent / "tutor")
        command = [tutor, "serve", "--port", str(self.port), "--log-level", "warning"]
        command += ["--workers", str(self.workers)] if self.workers > 1 else []
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env={**os.environ, **self.env}, stdout=log, stderr=log, start_new_session=True
            )
        wait_healthy(self.url, self.process, lambda: self.log_path.read_text()[-3000:], timeout)
        return self

    def kill(self) -> None:
        """`kill -9`: no clean-up of any kind runs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """A clean stop (SIGINT, as Ctrl-C), killed if it does not end in 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
