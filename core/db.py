"""The project's Postgres: one async psycopg pool, with versioned migrations applied on open.

`DATABASE_URL` points at any Postgres >= 14 (Neon, RDS, the one on this machine). Without it, an
embedded PostgreSQL from the `pgserver` wheel is started under `TUTOR_HOME/postgres`: zero setup.
Every later feature (index records, checkpoints, threads, profiles, quotas) lives in this database.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import select
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.settings import Settings

log = logging.getLogger(__name__)

# Embedded servers started by this process, by data folder. pgserver stops a server when the last
# process that asked for it exits, so holding the handle for the process lifetime is what we want.
_embedded_servers: dict[Path, Any] = {}

MIGRATIONS_LOCK = 72_616_001  # arbitrary constant: the advisory lock serialising migrations across replicas
CHECKPOINTER_LOCK = 72_616_002  # ... and LangGraph's checkpointer set-up (it deadlocks with itself)
# (take, give back) statements of `Database.advisory_lock`, for a number key and for a text key.
_NUMBER_LOCK = ("SELECT pg_try_advisory_lock(%s) AS ok", "SELECT pg_advisory_unlock(%s)")
_TEXT_LOCK = ("SELECT pg_try_advisory_lock(hashtext(%s)) AS ok", "SELECT pg_advisory_unlock(hashtext(%s))")
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# How long one attempt to open a connection may take (libpq's default is to wait for the OS, ~2 min
# on a black-holed host, during which the pool makes no other attempt).
CONNECT_TIMEOUT = 5
# psycopg_pool retries a failed connection attempt with exponential backoff (1, 2, 4, 8, 16 s ...)
# for `reconnect_timeout` (default 300 s); while such an attempt sleeps, the pool starts no other,
# so a database back after a minute's outage went unused for ~18 s. Giving up after 2 s keeps every
# pause under ~1 s; the next request that finds the pool short starts a fresh attempt at once.
RECONNECT_TIMEOUT = 2.0
STARTUP_WAIT = 15.0  # seconds `Database.open` waits for a server that is still starting


Pool = AsyncConnectionPool[AsyncConnection[DictRow]]


class DatabaseUnavailable(RuntimeError):
    """Postgres could not be reached or started; the message says which and how to fix it."""


# SQLSTATEs meaning "the server went away": connection exceptions (class 08) and the server shutting
# down or starting (57P01-57P03). Other operational errors (deadlock, cancelled query) are bugs or
# load, not an outage, and stay 500s.
_OUTAGE_STATES = ("08", "57P01", "57P02", "57P03")


def is_database_unavailable(exc: BaseException) -> bool:
    """True for errors that mean Postgres cannot be reached right now (a 503, worth retrying)."""
    if isinstance(exc, DatabaseUnavailable | PoolTimeout):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        return state is None or state.startswith(_OUTAGE_STATES)
    return False


def embedded_postgres_url(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL server under `data_dir` and return its URL."""
    data_dir = data_dir.resolve()
    if data_dir not in _embedded_servers:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            with warnings.catch_warnings():  # platformdirs complains when XDG_RUNTIME_DIR is unset
                warnings.simplefilter("ignore")
                import pgserver  # lazily: only the embedded mode needs it

                _forget_dead_users(data_dir)
                _embedded_servers[data_dir] = pgserver.get_server(data_dir, cleanup_mode="stop")
        except Exception as exc:  # pgserver raises plain exceptions with the server log inside
            raise DatabaseUnavailable(
                f"could not start the embedded PostgreSQL in {data_dir}: {exc}. "
                "Set DATABASE_URL to use an existing server instead."
            ) from exc
    url: str = _embedded_servers[data_dir].get_uri()
    return url


def _forget_dead_users(data_dir: Path) -> None:
    """Drop processes that no longer exist from pgserver's list of a server's users.

    pgserver 0.1.4 records each process using a server in `<data>/.handle_pids.json` and stops the
    server when the last one leaves (at exit). A process killed with -9 never leaves: its pid stayed
    listed, so every later clean shutdown saw another user and left Postgres running for good.
    """
    from pgserver.postgres_server import PostgresServer

    handles = data_dir / ".handle_pids.json"
    with PostgresServer._lock:  # the inter-process lock pgserver itself holds around this file
        if not handles.exists():
            return
        pids = json.loads(handles.read_text() or "[]")
        alive = [pid for pid in pids if _process_exists(pid)]
        if alive != pids:
            log.info("embedded Postgres: forgetting dead users %s", sorted(set(pids) - set(alive)))
            handles.write_text(json.dumps(alive))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: no signal sent, only the existence check
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def release_embedded_servers() -> None:
    """Give back this process's handles on embedded servers now, stopping those it was the last user of.

    pgserver does this at interpreter exit, but uvicorn ends a SIGTERM'd server by re-raising the
    signal, whose default action skips `atexit`: Postgres was left running.
    """
    for server in list(_embedded_servers.values()):
        server.cleanup()
    _embedded_servers.clear()


def database_url(settings: Settings) -> str:
    """`DATABASE_URL` when set, else the embedded server's URL."""
    return settings.database_url or embedded_postgres_url(settings.postgres_dir)


@dataclass
class Database:
    """An open connection pool on the project's database (migrated)."""

    url: str
    pool: Pool = field(repr=False)

    @classmethod
    async def open(cls, settings: Settings, *, url: str | None = None) -> Database:
        """Open the pool on `url` (default: DATABASE_URL, else the embedded server) and migrate."""
        if url is None:
            url = await asyncio.to_thread(database_url, settings)  # may start the embedded server
        # autocommit and dict rows are what the LangGraph checkpointer needs too; prepare_threshold=0
        # keeps prepared statements out of the way of pgbouncer-style poolers (Neon).
        kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        await _wait_until_reachable(url, {**kwargs, "connect_timeout": CONNECT_TIMEOUT})
        pool: Pool = AsyncConnectionPool(
            url,
            connection_class=AsyncConnection[DictRow],
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            kwargs={**kwargs, "connect_timeout": CONNECT_TIMEOUT},
            # Postgres down: a request gets PoolTimeout (503 database_unavailable) after this long.
            timeout=settings.db_pool_timeout,
            reconnect_timeout=RECONNECT_TIMEOUT,
            reconnect_failed=_log_unreachable,
            # Hosted servers drop idle connections: check before lending (cheaply), recycle old ones.
            check=_check_connection,
            max_idle=300,
            max_lifetime=1800,
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=STARTUP_WAIT)
        except Exception as exc:
            await pool.close()
            raise DatabaseUnavailable(f"cannot connect to Postgres ({_redact(url)}): {exc}") from exc
        db = cls(url=url, pool=pool)
        await db.migrate()
        return db

    async def close(self) -> None:
        """Close the pool."""
        await self.pool.close()

    @asynccontextmanager
    async def advisory_lock(self, key: int | str) -> AsyncIterator[AsyncConnection[DictRow]]:
        """Hold a session-level advisory lock (on a connection of its own) for the block.

        How replicas starting together take turns at one-time set-up work, and how ingest runs one
        at a time per collection. An `int` key is the lock itself; a `str` key (a collection's
        namespace) is hashed to one with `hashtext`.

        Polls with `pg_try_advisory_lock` rather than waiting in `pg_advisory_lock`: a session
        blocked in that call is a running transaction, which the lock holder's CREATE INDEX
        CONCURRENTLY then waits for — an undetected deadlock (seen with two replicas starting).
        """
        take, give = _TEXT_LOCK if isinstance(key, str) else _NUMBER_LOCK
        async with self.pool.connection() as conn:
            for attempt in itertools.count():
                row = await (await conn.execute(take, (key,))).fetchone()
                if row and row["ok"]:
                    break
                await asyncio.sleep(min(0.05 * (attempt + 1), 0.5))
            try:
                yield conn
            finally:
                await conn.execute(give, (key,))

    async def migrate(self) -> list[str]:
        """Apply the migrations in `core/migrations/` that this database has not seen yet.

        Runs under an advisory lock so replicas starting together apply each migration exactly once.
        Returns the names of the migrations applied now.
        """
        applied_now: list[str] = []
        async with self.advisory_lock(MIGRATIONS_LOCK) as conn:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version int PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT version FROM schema_migrations")
            done = {row["version"] for row in await cur.fetchall()}
            for version, name, sql in _migrations():
                if version in done:
                    continue
                await _apply(conn, version, name, sql)
                applied_now.append(name)
        if applied_now:
            log.info("applied migrations: %s", ", ".join(applied_now))
        return applied_now


async def _wait_until_reachable(url: str, kwargs: dict[str, Any]) -> None:
    """Wait up to STARTUP_WAIT for a server that is still starting (a container started beside us).

    The pool itself gives up on a failing server after RECONNECT_TIMEOUT.
    """
    deadline = asyncio.get_running_loop().time() + STARTUP_WAIT
    while True:
        try:
            conn = await AsyncConnection.connect(url, **kwargs)
        except psycopg.OperationalError as exc:
            if asyncio.get_running_loop().time() >= deadline:
                raise DatabaseUnavailable(f"cannot connect to Postgres ({_redact(url)}): {exc}") from exc
            await asyncio.sleep(0.5)
        else:
            await conn.close()
            return


# A connection that fails its check means the server restarted or dropped us: every other idle
# connection is likely dead too. The pool would find them one request at a time, pausing 1, 2, 4 s
# between tries (its backoff); `pool.check()` tests them all at once and replaces the dead ones.
_sweeps: set[asyncio.Task[None]] = set()


async def _check_connection(conn: AsyncConnection[Any]) -> None:
    """The pool's check before it lends a connection: a round trip, but only when one is needed.

    A server that restarted or dropped an idle connection has written its farewell and closed the
    socket, so our end reads as ready; a healthy idle connection has nothing to read. Only the
    former get the round trip (a turn checks out about ten connections: ten round trips saved).
    """
    if not _has_input(conn):
        return
    try:
        await AsyncConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)  # set by psycopg_pool on every connection it lends
        if isinstance(pool, AsyncConnectionPool) and not _sweeps:
            sweep = asyncio.create_task(pool.check())
            _sweeps.add(sweep)  # held until done: the loop keeps only weak references to tasks
            sweep.add_done_callback(_sweeps.discard)
        raise


def _has_input(conn: AsyncConnection[Any]) -> bool:
    """Whether the server sent anything unasked on this idle connection (or it cannot be told)."""
    try:
        poller = select.poll()  # not select.select: it fails on descriptors past 1024 (a busy server)
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, AttributeError, psycopg.Error):  # AttributeError: no poll (Windows)
        return True


async def _log_unreachable(pool: AsyncConnectionPool[Any]) -> None:
    log.warning("Postgres unreachable: pool %s gave up reconnecting for now", pool.name)


async def _apply(conn: AsyncConnection[DictRow], version: int, name: str, sql: str) -> None:
    async with conn.transaction():
        await conn.execute(sql.encode(), prepare=False)  # several statements: no prepared form
        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))


def _migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every `NNNN_name.sql` shipped in `core/migrations`, in order."""
    found = []
    for entry in resources.files("core.migrations").iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
