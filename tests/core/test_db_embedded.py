"""The embedded Postgres does not outlive its users, even after one of them was `kill -9`ed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

START = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from core.db import embedded_postgres_url, release_embedded_servers
    embedded_postgres_url(Path(sys.argv[1]))
    if sys.argv[2] == "hold":
        print("ready", flush=True)
        time.sleep(600)
    release_embedded_servers()
    """
)


def _postmasters(data_dir: Path) -> list[int]:
    """Pids of postgres processes serving `data_dir` (their command line carries `-D <dir>`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and str(data_dir).encode() in argv:
            found.append(int(entry.name))
    return found


def _run(data_dir: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", START, str(data_dir), mode], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )


def test_a_clean_stop_after_a_killed_user_stops_the_server(tmp_path: Path) -> None:
    data_dir = (tmp_path / "pg").resolve()
    holder = _run(data_dir, "hold")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        assert _postmasters(data_dir)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    assert _postmasters(data_dir), "kill -9 of the user cannot stop the server"

    clean = _run(data_dir, "stop")  # joins the running server, then stops cleanly
    assert clean.wait(60) == 0
    deadline = time.monotonic() + 10
    while _postmasters(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _postmasters(data_dir)
    for pid in left:  # never leave one behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, "the killed process's stale handle kept Postgres running"
