"""A LangChain `RecordManager` on the project's Postgres pool.

LangChain's indexing API (`aindex`) asks a record manager which document hashes are already in the
vector store, so unchanged chunks are neither embedded nor written again. langchain-classic's
`SQLRecordManager` would need SQLAlchemy and a second connection pool; this one is the same
bookkeeping on the async psycopg pool everything else uses (table `index_records`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from langchain_core.indexing import RecordManager

from core.db import Pool

_NOW = "SELECT extract(epoch FROM clock_timestamp())::float8 AS now"


class PostgresRecordManager(RecordManager):
    """Index records of one namespace (one vector collection at one location). Async only."""

    def __init__(self, pool: Pool, namespace: str) -> None:
        super().__init__(namespace)
        self.pool = pool

    # The schema comes with the project's migrations (core/migrations/0001_index.sql).
    async def acreate_schema(self) -> None:
        """Nothing to do: the table comes with the migrations."""
        return None

    async def aget_time(self) -> float:
        # The database clock, not ours: several machines may index into one store.
        """The database's clock, so every writer agrees on time."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_NOW)).fetchone()
        return float(_field(row, "now"))

    async def aupdate(
        self,
        keys: Sequence[str],
        *,
        group_ids: Sequence[str | None] | None = None,
        time_at_least: float | None = None,
    ) -> None:
        """Record (or refresh) `keys` as indexed now, with their group ids."""
        if not keys:
            return
        if group_ids is None:
            group_ids = [None] * len(keys)
        if len(group_ids) != len(keys):
            raise ValueError(f"{len(keys)} keys but {len(group_ids)} group ids")
        async with self.pool.connection() as conn, conn.transaction():
            now = float(_field(await (await conn.execute(_NOW)).fetchone(), "now"))
            if time_at_least is not None and now < time_at_least:
                raise ValueError(f"database clock went backwards ({now} < {time_at_least})")
            await conn.execute(
                "INSERT INTO index_records (namespace, key, group_id, updated_at)"
                " SELECT %s, k, g, %s FROM unnest(%s::text[], %s::text[]) AS t(k, g)"
                " ON CONFLICT (namespace, key)"
                " DO UPDATE SET group_id = excluded.group_id, updated_at = excluded.updated_at",
                (self.namespace, now, list(keys), list(group_ids)),
            )

    async def aexists(self, keys: Sequence[str]) -> list[bool]:
        """Whether each key is recorded."""
        if not keys:
            return []
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT key FROM index_records WHERE namespace = %s AND key = ANY(%s)",
                (self.namespace, list(keys)),
            )
            found = {row["key"] for row in await cur.fetchall()}
        return [key in found for key in keys]

    async def alist_keys(
        self,
        *,
        before: float | None = None,
        after: float | None = None,
        group_ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """Recorded keys, filtered by update time and group."""
        query = "SELECT key FROM index_records WHERE namespace = %s"
        params: list[Any] = [self.namespace]
        if before is not None:
            query += " AND updated_at < %s"
            params.append(before)
        if after is not None:
            query += " AND updated_at > %s"
            params.append(after)
        if group_ids is not None:
            query += " AND group_id = ANY(%s)"
            params.append(list(group_ids))
        if limit:
            query += " LIMIT %s"
            params.append(limit)
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return [row["key"] for row in await cur.fetchall()]

    async def adelete_keys(self, keys: Sequence[str]) -> None:
        """Forget `keys`."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "DELETE FROM index_records WHERE namespace = %s AND key = ANY(%s)",
                (self.namespace, list(keys)),
            )

    async def keys_by_group(self) -> dict[str, set[str]]:
        """Every recorded key, grouped by source: what `ingest` compares before and after a run."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT group_id, array_agg(key) AS keys FROM index_records"
                " WHERE namespace = %s GROUP BY group_id",
                (self.namespace,),
            )
            return {row["group_id"]: set(row["keys"]) for row in await cur.fetchall()}

    async def aclear(self) -> None:
        """Forget every record of this namespace (the collection is being rebuilt)."""
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM index_records WHERE namespace = %s", (self.namespace,))

    # The indexing API has sync twins of every method; everything here runs on the event loop.
    def create_schema(self) -> None:
        """Async only."""
        _async_only()

    def get_time(self) -> float:
        """Async only."""
        _async_only()

    def update(self, keys: Sequence[str], **_: Any) -> None:
        """Async only."""
        _async_only()

    def exists(self, keys: Sequence[str]) -> list[bool]:
        """Async only."""
        _async_only()

    def list_keys(self, **_: Any) -> list[str]:
        """Async only."""
        _async_only()

    def delete_keys(self, keys: Sequence[str]) -> None:
        """Async only."""
        _async_only()


def _field(row: Any, name: str) -> Any:
    if row is None:
        raise RuntimeError("query returned no row")
    return row[name]


def _async_only() -> NoReturn:
    raise NotImplementedError("PostgresRecordManager is async: use langchain_core.indexing.aindex")
