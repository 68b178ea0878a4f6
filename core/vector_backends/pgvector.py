"""The pgvector backend: the book's vectors in the same Postgres as everything else.

Per collection, three tables (names from the collection, `vec_<name>...`):
- the chunks: langchain-postgres' `PGVectorStore` table (id, content, embedding, metadata), written
  through the indexing API like any LangChain store;
- `..._postings` (chunk, term, weight): each chunk's BM25 tf-part weights (`core.sparse`), indexed by
  term; the keyword leg sums weight × IDF over the query's terms, with the IDF computed from the
  postings' document frequencies exactly as Qdrant's IDF modifier does, so both backends score the
  same BM25;
- `..._sentences` (chunk, ordinal, embedding): the chunk's sentence vectors, `ordinal` being the
  position in `core.vectors.chunk_sentences(text, metadata)`.
Postings and sentences reference their chunk with ON DELETE CASCADE: deleting a chunk (an edited
or removed page) deletes them in the same statement, and no orphan can exist.

Search reads the tables with plain SQL on a small blocking psycopg pool of its own (search runs in
a worker thread): the three legs in one statement, then the chosen chunks, instead of LangChain's
SQLAlchemy path (README, "Measured"); vectors are read in binary (a text vector is parsed float by
float in Python: ~0.9 ms a search).
Vector scans are exact (no HNSW index): at book scale a scan costs a few milliseconds, and exact
keeps results identical to Qdrant's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from langchain_core.embeddings import Embeddings
from langchain_postgres import PGEngine
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool, PoolTimeout
from qdrant_client.http import models
from qdrant_client.hybrid.fusion import distribution_based_score_fusion, reciprocal_rank_fusion
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.db import Database
from core.sparse import BM25SparseEmbeddings
from core.vector_backends import ChunkRecord, RankFusion, SearchLegs, VectorStoreUnavailable
from core.vector_backends.pgvector_store import ChunkVectorStore, collection_tables

READ_POOL_SIZE = 4  # search threads reading at once per process
EXTENSION_LOCK = "pgvector: CREATE EXTENSION vector"


class VectorExtensionMissing(RuntimeError):
    """The Postgres at DATABASE_URL has no pgvector extension."""


class PgVectorBackend:
    """`VectorBackend` over pgvector tables in the project's database."""

    kind = "pgvector"
    location = "pgvector"  # the database itself: records of a Qdrant collection never apply here

    def __init__(self, db: Database, reads: ConnectionPool[Any], schema: str) -> None:
        self.db, self.reads, self.schema = db, reads, schema
        # Writes go through SQLAlchemy (what PGVectorStore speaks), one connection per use: ingest
        # is rare, and pooled connections would be tied to the event loop that opened them.
        self.engine = PGEngine.from_engine(
            create_async_engine(
                "postgresql+psycopg://",
                async_creator=lambda: psycopg.AsyncConnection.connect(db.url, autocommit=False),
                poolclass=NullPool,
            )
        )

    @classmethod
    async def open(cls, db: Database) -> PgVectorBackend:
        """Make sure the `vector` extension exists, then open the read pool."""
        await _ensure_extension(db)
        reads: ConnectionPool[Any] = ConnectionPool(
            db.url,
            min_size=1,
            max_size=READ_POOL_SIZE,
            kwargs={"autocommit": True, "prepare_threshold": None},
            configure=register_vector,
            timeout=db.pool.timeout,
            open=False,
        )
        reads.open(wait=True, timeout=30)
        async with db.pool.connection() as conn:  # PGVectorStore names a schema; ours is the search path's
            schema = (await (await conn.execute("SELECT current_schema() AS s")).fetchone() or {})["s"]
        return cls(db, reads, schema)

    def dimension(self, collection: str) -> int | None:
        """Declared size of the chunk table's vectors; None when the table does not exist."""
        row = self._one(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = 'embedding'",
            (collection_tables(collection)[0],),
        )
        return int(row[0]) if row else None

    def has_sentences(self, collection: str) -> bool:
        """Whether the sentence table exists."""
        return self._one("SELECT to_regclass(%s) IS NOT NULL", (collection_tables(collection)[2],))[0]  # type: ignore[index]

    async def create(self, collection: str, *, dimension: int, sentences: bool) -> None:
        """(Re)create the chunk table (PGVectorStore's layout), its postings and sentence tables."""
        chunks, postings, sentence_table = collection_tables(collection)
        async with self.db.pool.connection() as conn, conn.transaction():
            await conn.execute(f"DROP TABLE IF EXISTS {sentence_table}, {postings}, {chunks}")
        await self.engine.ainit_vectorstore_table(chunks.strip('"'), dimension, schema_name=self.schema)
        async with self.db.pool.connection() as conn, conn.transaction():
            references = f"uuid NOT NULL REFERENCES {chunks} ON DELETE CASCADE"
            await conn.execute(
                f"CREATE TABLE {postings} (chunk {references}, term bigint NOT NULL,"
                " weight real NOT NULL, PRIMARY KEY (term, chunk))"
            )
            await conn.execute(f"CREATE INDEX ON {postings} (chunk)")  # cascading deletes find rows fast
            if sentences:
                await conn.execute(
                    f"CREATE TABLE {sentence_table} (chunk {references}, ordinal int NOT NULL,"
                    f" embedding vector({dimension}) NOT NULL, PRIMARY KEY (chunk, ordinal))"
                )

    def vector_store(
        self, collection: str, *, embeddings: Embeddings, sparse: BM25SparseEmbeddings, sentences: bool
    ) -> ChunkVectorStore:
        """The store the indexing API writes through: PGVectorStore plus postings and sentences."""
        return ChunkVectorStore(self.db, self.engine, self.schema, collection, embeddings, sparse, sentences)

    def count(self, collection: str) -> int:
        """Rows of the chunk table (0 when it does not exist yet)."""
        table = collection_tables(collection)[0]
        if self._one("SELECT to_regclass(%s)", (table,))[0] is None:  # type: ignore[index]
            return 0
        return int(self._one(f"SELECT count(*) FROM {table}")[0])  # type: ignore[index]

    def dense(self, collection: str, vector: list[float], limit: int) -> dict[str, float]:
        """Chunk id → cosine, best first (exact scan)."""
        return dict(self._nearest(collection_tables(collection)[0], "langchain_id", vector, limit))

    def sparse(self, collection: str, terms: Sequence[int], limit: int) -> dict[str, float]:
        """Chunk id → Σ weight × IDF over the query's terms, best first."""
        if not terms:
            return {}
        return dict(self._all(_sparse_sql(collection), {"t": list(terms), "n": limit}))

    def closest_sentences(self, collection: str, vector: list[float], limit: int) -> list[tuple[str, float]]:
        """(chunk id, cosine) of the closest sentences, best first."""
        return self._nearest(collection_tables(collection)[2], "chunk", vector, limit)

    def legs(
        self, collection: str, vector: list[float], terms: Sequence[int], depth: int, sentences: int
    ) -> SearchLegs:
        """The three rankings in one statement (one round trip instead of three), each leg numbered."""
        chunks, _, sentence_table = collection_tables(collection)
        parts = [f"SELECT 0, * FROM ({_nearest_sql(chunks, 'langchain_id')}) d"]
        if terms:
            parts.append(f"SELECT 1, * FROM ({_sparse_sql(collection)}) s")
        if sentences:
            parts.append(f"SELECT 2, * FROM ({_nearest_sql(sentence_table, 'chunk', limit='m')}) c")
        params = {"v": np.asarray(vector, dtype=np.float32), "n": depth, "t": list(terms), "m": sentences}
        found: list[list[tuple[str, float]]] = [[], [], []]
        for leg, chunk, score in self._all(" UNION ALL ".join(parts), params):
            found[leg].append((chunk, score))
        # UNION ALL promises no order across its parts' rows: each leg is sorted again, best first.
        dense, sparse, closest = (sorted(rows, key=lambda row: -row[1]) for rows in found)
        return SearchLegs(dense=dict(dense), sparse=dict(sparse), sentences=closest)

    def rank_fused(
        self, collection: str, vector: list[float], terms: Sequence[int], depth: int, fusion: RankFusion
    ) -> dict[str, float]:
        """The two chunk legs fused in Python by qdrant-client's own `rrf` / `dbsf` (what Qdrant runs)."""
        legs = [self.dense(collection, vector, depth), self.sparse(collection, terms, depth)]
        scored = [[models.ScoredPoint(id=i, version=0, score=s) for i, s in leg.items()] for leg in legs]
        if fusion == "rrf":
            fused = reciprocal_rank_fusion(scored, limit=depth)
        else:
            fused = distribution_based_score_fusion(scored, limit=depth)
        return {str(p.id): p.score for p in fused}

    def fetch(self, collection: str, ids: Sequence[str], *, with_vectors: bool) -> dict[str, ChunkRecord]:
        """The stored chunks of `ids` that exist."""
        vector = "embedding" if with_vectors else "NULL"
        sql = (
            f"SELECT langchain_id::text, content, langchain_metadata, {vector}"
            f" FROM {collection_tables(collection)[0]} WHERE langchain_id = ANY(%s::uuid[])"
        )
        rows = self._all(sql, (list(ids),), binary=with_vectors)
        return {row[0]: _record(row) for row in rows}

    def page_chunks(self, collection: str, doc_path: str) -> list[ChunkRecord]:
        """Every chunk whose metadata names `doc_path`."""
        sql = (
            "SELECT langchain_id::text, content, langchain_metadata, NULL"
            f" FROM {collection_tables(collection)[0]} WHERE langchain_metadata->>'doc_path' = %s"
        )
        return [_record(row) for row in self._all(sql, (doc_path,))]

    def chunk_sample(self, collection: str, limit: int) -> Iterator[tuple[np.ndarray, list[Sequence[int]]]]:
        """Batches of chunk vectors with each chunk's terms."""
        chunks, postings, _ = collection_tables(collection)
        sql = (
            f"SELECT c.embedding, coalesce((SELECT array_agg(term) FROM {postings} p"
            f" WHERE p.chunk = c.langchain_id), '{{}}') FROM {chunks} c LIMIT %s"
        )
        for batch in self._batches(sql, limit):
            yield np.asarray([row[0] for row in batch], dtype=np.float64), [row[1] for row in batch]

    def sentence_sample(self, collection: str, limit: int) -> Iterator[np.ndarray]:
        """Batches of sentence vectors."""
        for batch in self._batches(
            f"SELECT embedding FROM {collection_tables(collection)[2]} LIMIT %s", limit
        ):
            yield np.asarray([row[0] for row in batch], dtype=np.float64)

    def sentence_vectors(
        self, collection: str, chunks: Mapping[str, int]
    ) -> dict[str, dict[int, list[float]]]:
        """Chunk id → {ordinal: stored sentence vector}."""
        sql = "SELECT chunk::text, ordinal, embedding FROM {} WHERE chunk = ANY(%s::uuid[])"
        found: dict[str, dict[int, list[float]]] = {}
        for chunk, ordinal, vector in self._all(
            sql.format(collection_tables(collection)[2]), (list(chunks),), binary=True
        ):
            found.setdefault(chunk, {})[ordinal] = vector.tolist()
        return found

    def close(self) -> None:
        """Close the read pool (the write engine holds no connection between uses)."""
        self.reads.close()

    def _all(self, sql: str, params: Any = None, *, binary: bool = False) -> list[Any]:
        """The rows of `sql`; `binary` for vectors (a text vector is parsed float by float in Python)."""
        try:
            with self.reads.connection() as conn:
                return conn.execute(sql, params, binary=binary).fetchall()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise VectorStoreUnavailable(f"pgvector: {exc}") from exc

    def _nearest(self, table: str, id_column: str, vector: list[float], limit: int) -> list[Any]:
        """(id, cosine) of the rows of `table` closest to `vector`, best first: an exact scan."""
        params = {"v": np.asarray(vector, dtype=np.float32), "n": limit}
        return self._all(_nearest_sql(table, id_column), params)

    def _one(self, sql: str, params: Any = None) -> tuple[Any, ...] | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    def _batches(self, sql: str, limit: int, size: int = 1024) -> Iterator[list[Any]]:
        rows = self._all(sql, (limit,), binary=True)
        for start in range(0, len(rows), size):
            yield rows[start : start + size]


async def _ensure_extension(db: Database) -> None:
    """Create the `vector` extension if it is missing; a clear error when the server lacks it."""
    async with db.pool.connection() as conn:
        if await (await conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).fetchone():
            return
        available = await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if not await available.fetchone():
            raise VectorExtensionMissing(
                "VECTOR_STORE=pgvector needs the pgvector extension (`vector`), which the Postgres at "
                "DATABASE_URL does not have: install it on that server (Neon, Supabase and RDS ship it; "
                "packages such as postgresql-16-pgvector), leave DATABASE_URL unset to use the embedded "
                "Postgres (it includes pgvector), or set VECTOR_STORE=qdrant."
            )
    try:
        async with db.advisory_lock(EXTENSION_LOCK) as conn:  # workers starting together: one creates it
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise VectorExtensionMissing(
            "VECTOR_STORE=pgvector needs the `vector` extension and this database user may not create "
            "it: have the database owner run `CREATE EXTENSION vector;` once, or set VECTOR_STORE=qdrant."
        ) from exc


def _nearest_sql(table: str, id_column: str, limit: str = "n") -> str:
    """(id, cosine) of the rows of `table` closest to the vector `%(v)s`, best first: an exact scan."""
    return (
        f"SELECT {id_column}::text, 1 - (embedding <=> %(v)s) FROM {table}"
        f" ORDER BY embedding <=> %(v)s LIMIT %({limit})s"
    )


def _sparse_sql(collection: str) -> str:
    """Chunk id → Σ weight × IDF over the terms `%(t)s`, best first (top `%(n)s`)."""
    chunks, postings, _ = collection_tables(collection)
    return (
        f"WITH n AS (SELECT count(*)::float8 AS total FROM {chunks}),"
        f" q AS (SELECT term, ln(1 + (n.total - count(*) + 0.5) / (count(*) + 0.5)) AS idf"
        f" FROM {postings}, n WHERE term = ANY(%(t)s) GROUP BY term, n.total)"
        f" SELECT p.chunk::text, sum(p.weight * q.idf) AS score FROM {postings} p JOIN q USING (term)"
        " GROUP BY p.chunk ORDER BY score DESC LIMIT %(n)s"
    )


def _record(row: tuple[Any, ...]) -> ChunkRecord:
    chunk_id, content, metadata, vector = row
    return ChunkRecord(
        id=chunk_id,
        content=content,
        metadata=metadata or {},
        vector=vector.tolist() if vector is not None else None,
    )
