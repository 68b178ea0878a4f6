"""The processes behind `tutor serve`: uvicorn servers, and with `--workers N` a small supervisor.

Why not uvicorn's own supervisor (`uvicorn.run(workers=N)`): it gives every worker the same
listening socket. All workers wake for a new connection, the first one awake accepts every
connection waiting (asyncio accepts a backlog's worth at once), and keep-alive connections then
stay with it: ten streams from one client all went to one worker, fifty split 31 / 19. Admission
is per worker (`api.admission`), so the busier worker queued turns for a whole answer (~4.5 s)
while the other had free places. Here each worker gets a socket of its own, all bound to the same
address with `SO_REUSEPORT`, and the kernel hashes each new connection to one of them: an even
spread whatever the workers are doing (the way nginx's `reuseport` balances its workers).

(Linux only: elsewhere the workers share one socket, see `BALANCED`.) A worker's socket starts
listening only once the worker has started (asyncio's `create_server` calls `listen`), so no
connection waits on a worker still loading its model; a worker that dies takes its socket with it,
and the kernel hashes new connections over the others until its replacement listens. Workers also
leave when the supervisor dies (even by `kill -9`), so an orphan never keeps serving the port.
uvicorn's supervisor also pinged each worker twice a second; this one sleeps until a worker exits
or a signal arrives. The workers share one small array, each worker's count of running turns, so
admission can lend a busy worker the places an idle one leaves free (`api.admission.HostShare`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections.abc import MutableSequence
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

logger = logging.getLogger(__name__)
spawn = multiprocessing.get_context("spawn")

# Only Linux (3.9+) spreads connections over the `SO_REUSEPORT` sockets bound to one address; on
# macOS and the BSDs one of them would get them all. There the workers share one socket, as under
# uvicorn's supervisor (and admission's borrowing evens out what it can).
BALANCED = sys.platform.startswith("linux")

# How often the server's housekeeping runs (the Date header, the exit check). uvicorn's 0.1 s tick
# cost 5.0 ms of CPU a second for two idle workers and their supervisor; 1 s, 2.0. A stop signal
# is then noticed within a second.
TICK_SECONDS = 1.0


class TutorServer(uvicorn.Server):
    """uvicorn's server with a one-second housekeeping tick."""

    async def main_loop(self) -> None:
        """Refresh the Date header and check for exit once a second until told to stop."""
        # A timed loop, not an event: the Date header needs refreshing whether or not anything happens.
        while not await self.on_tick(0):  # noqa: ASYNC110 (counter 0: the once-a-second work, every tick)
            await asyncio.sleep(TICK_SECONDS)


class AddressInUse(OSError):
    """Something already listens on the address `tutor serve` was asked to use."""


def bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to (`host`, `port`), not yet listening (the worker's server will listen).

    `reuse_port`: with `SO_REUSEPORT`, so each worker can bind one of its own. Raises `AddressInUse`.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no obstacle
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(exc.errno, f"{host}:{port} is already in use") from exc
        raise
    return sock


def check_address_free(host: str, port: int) -> None:
    """Raise `AddressInUse` if anything listens on the address.

    Needed because `SO_REUSEPORT` would let the workers join another process's listening group on
    the same port (a forgotten `tutor serve` of the same user) and silently share its traffic.
    """
    bound_socket(host, port, reuse_port=False).close()


def _leave_with_parent() -> None:
    """Stop this worker (gracefully, as on SIGTERM) once the supervisor is gone, however it ended."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    wait([parent.sentinel])
    os.kill(os.getpid(), signal.SIGTERM)


def _run_worker(config: uvicorn.Config, sock: socket.socket, counts: MutableSequence[int], slot: int) -> None:
    """A worker process: serve on `sock` until stopped (runs in the spawned child)."""
    from api.admission import join_host

    join_host(counts, slot)  # admission sees the other workers' running turns
    config.configure_logging()
    threading.Thread(target=_leave_with_parent, name="leave-with-parent", daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole group; the server stopped
        TutorServer(config).run(sockets=[sock])


class Supervisor:
    """Runs `count` worker processes, each on its own socket; replaces any that dies.

    Stops them all on SIGINT/SIGTERM (each finishes its open requests, as uvicorn does), or when one
    fails while starting (a broken app, database or book would fail the same way again).
    """

    def __init__(self, config: uvicorn.Config, count: int) -> None:
        self.config, self.count = config, count
        self.workers: list[BaseProcess] = []
        self.stopping = False
        # Turns running in each worker (api.admission.HostShare); a replaced worker's cell restarts at 0.
        self.running_turns = spawn.RawArray("i", count)
        self.shared: socket.socket | None = None  # the one socket of all workers, where not BALANCED

    def _start(self, slot: int) -> BaseProcess:
        host, port = self.config.host, self.config.port
        sock = self.shared or bound_socket(host, port, reuse_port=True)
        self.running_turns[slot] = 0
        try:
            args = (self.config, sock, self.running_turns, slot)
            worker = spawn.Process(target=_run_worker, args=args, name=f"tutor-worker-{slot}")
            worker.start()  # the child gets its own copy of the socket
        finally:
            if sock is not self.shared:
                sock.close()  # ours would keep it open (and hashed to) after the worker died
        return worker

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def run(self) -> int:
        """Supervise until stopped; the exit status for `tutor serve`."""
        if BALANCED:
            check_address_free(self.config.host, self.config.port)
        else:
            self.shared = bound_socket(self.config.host, self.config.port, reuse_port=False)
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(wake_write.fileno())  # a signal ends `wait` below
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        status = 0
        try:
            self.workers = [self._start(slot) for slot in range(self.count)]
            logger.info("Started %d workers: %s", self.count, [w.pid for w in self.workers])
            while not self.stopping:
                wait([wake_read, *(w.sentinel for w in self.workers)])
                with contextlib.suppress(BlockingIOError):
                    wake_read.recv(4096)
                for index, worker in enumerate(self.workers):
                    if self.stopping or worker.is_alive():
                        continue
                    worker.join()
                    if worker.exitcode == STARTUP_FAILURE:
                        logger.error("Worker %s failed to start; stopping.", worker.pid)
                        self.stopping, status = True, STARTUP_FAILURE
                        break
                    logger.warning("Worker %s exited (%s); starting another.", worker.pid, worker.exitcode)
                    self.workers[index] = self._start(index)
        finally:
            self._stop_all()
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            wake_read.close()
            wake_write.close()
            if self.shared is not None:
                self.shared.close()
        return status

    def _stop_all(self) -> None:
        for worker in self.workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            worker.join()
