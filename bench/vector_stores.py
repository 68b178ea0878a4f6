"""Both vector backends in one run: retrieval quality and what a query costs on each.

    TUTOR_HOME=/tmp/tutor-bench-vectors uv run python bench/vector_stores.py \\
        [--beir ../shared/benchmarks/scifact] [--rounds 2]

Into one TUTOR_HOME (embedded Postgres + embedded Qdrant), for `qdrant` then `pgvector`: ingests the
sample book (with sentence vectors) and the BEIR corpus (without, as `tutor eval --beir` does),
then reports
- nDCG@10 and Recall@5 of every search mode on SciFact and on the book's two question sets;
- per hybrid query (z-score fusion, the default; the query embedded each time): wall p50/p95 and
  CPU ms, counting this process AND the embedded Postgres server processes (pgvector's scans run
  there), on the book's questions and on the BEIR queries;
- pgvector only: the dense leg through langchain-postgres' `PGVectorStore` search vs our direct SQL,
  and an exact scan vs an HNSW index on the BEIR chunks (latency, overlap of the top 50).
Documents are embedded once and reused for the second backend (an in-memory cache in front of the
model), so the run embeds SciFact once (~3.5 min on a 2-core VM). Prints tables and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from langchain_core.embeddings import Embeddings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.db import Database  # noqa: E402
from core.index import BookIndex  # noqa: E402
from core.metrics import percentile  # noqa: E402
from core.providers import make_embeddings  # noqa: E402
from core.retrieval import search  # noqa: E402
from core.settings import Settings, get_settings  # noqa: E402
from core.vector_backends import VectorBackend  # noqa: E402
from core.vector_backends.pgvector import PgVectorBackend, collection_tables  # noqa: E402
from core.vector_backends.qdrant import QdrantBackend  # noqa: E402
from ingest import evaluate as ev  # noqa: E402
from ingest.book import ingest_book  # noqa: E402

QUESTION_SETS = [ROOT / "book" / "questions.jsonl", ROOT / "book" / "plain_questions.jsonl"]


class EmbedOnce(Embeddings):
    """The model, with document vectors remembered: the second backend's ingest embeds nothing."""

    def __init__(self, model: Embeddings) -> None:
        self.model, self.vectors = model, dict[str, list[float]]()
        self.dimension = getattr(model, "dimension", None)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Vectors of `texts`, embedding only those not seen before."""
        new = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        self.vectors.update(zip(new, self.model.embed_documents(new), strict=True) if new else ())
        return [self.vectors[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """Queries are embedded every time (that is part of a query's cost)."""
        return self.model.embed_query(text)


class CpuClock:
    """CPU seconds of this process plus the embedded Postgres server's processes."""

    def __init__(self, settings: Settings) -> None:
        pid_file = settings.postgres_dir / "postmaster.pid"
        self.postmaster = psutil.Process(int(pid_file.read_text().split()[0])) if pid_file.exists() else None

    def read(self) -> dict[int, float]:
        """pid → CPU seconds so far."""
        processes = [psutil.Process()]
        if self.postmaster:
            processes += [self.postmaster, *self.postmaster.children(recursive=True)]
        times: dict[int, float] = {}
        for process in processes:
            try:
                cpu = process.cpu_times()
                times[process.pid] = cpu.user + cpu.system
            except psutil.NoSuchProcess:
                pass
        return times

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        """CPU seconds spent between two readings."""
        return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def timed_queries(clock: CpuClock, run: Callable[[str], object], queries: list[str]) -> dict[str, float]:
    """Wall p50/p95 and CPU ms per query of `run` over `queries` (after a warm-up of 10)."""
    for query in queries[:10]:
        run(query)
    walls, before = [], clock.read()
    for query in queries:
        started = time.perf_counter()
        run(query)
        walls.append((time.perf_counter() - started) * 1000)
    cpu = CpuClock.spent(before, clock.read()) * 1000 / len(queries)
    return {
        "p50_ms": round(percentile(walls, 50), 1),
        "p95_ms": round(percentile(walls, 95), 1),
        "cpu_ms_per_query": round(cpu, 1),
    }


def quality(reports: list[ev.ModeReport]) -> dict[str, dict[str, float]]:
    """mode → nDCG@10 and Recall@5."""
    return {r.mode: {"ndcg_at_10": r.ndcg_at_10, "recall_at_5": r.recall_at_5} for r in reports}


async def measure(
    settings: Settings,
    db: Database,
    backend: VectorBackend,
    embeddings: Embeddings,
    model: str,
    beir: Path,
    rounds: int,
) -> dict[str, Any]:
    clock, fusion = CpuClock(settings), settings.hybrid_fusion
    book = BookIndex(db=db, backend=backend, collection="book", embeddings=embeddings, embedding_model=model)
    started = time.perf_counter()
    await ingest_book(book, settings.book_path, settings)
    result: dict[str, Any] = {"book_ingest_s": round(time.perf_counter() - started, 1), "book": {}}
    for path in QUESTION_SETS:
        splits = await ev.evaluate_by_split(book, ev.load_questions(path), fusion)
        result["book"][path.name] = quality(splits["all"])
    questions = [q.text for path in QUESTION_SETS[:1] for q in ev.load_questions(path)] * rounds
    result["book_latency"] = timed_queries(clock, lambda q: search(book, q, k=5, fusion=fusion), questions)

    started = time.perf_counter()
    corpus, queries, summary = await ev.prepare_beir(book, beir)
    result["beir_ingest_s"] = round(time.perf_counter() - started, 1)
    result["beir_chunks"] = summary.chunks
    result["beir"] = quality(await ev.evaluate(corpus, queries, fusion))
    texts = [q.text for q in queries]
    result["beir_latency"] = timed_queries(clock, lambda q: search(corpus, q, k=10, fusion=fusion), texts)
    if isinstance(backend, PgVectorBackend):
        result["pgvector_read_paths"] = await read_paths(clock, db, backend, corpus, texts)
    return result


async def read_paths(
    clock: CpuClock, db: Database, backend: PgVectorBackend, corpus: BookIndex, texts: list[str]
) -> dict[str, Any]:
    """Dense leg (top 50): PGVectorStore vs direct SQL; exact scan vs HNSW (with top-50 overlap)."""
    import psycopg
    from langchain_postgres import PGEngine, PGVectorStore
    from sqlalchemy.ext.asyncio import create_async_engine

    vectors = {t: corpus.embeddings.embed_query(t) for t in texts}
    table = collection_tables(corpus.collection)[0]
    engine = PGEngine.from_engine(  # a pooled engine, so LangChain's path is not charged for connecting
        create_async_engine(
            "postgresql+psycopg://", async_creator=lambda: psycopg.AsyncConnection.connect(db.url)
        )
    )
    store = await PGVectorStore.create(
        engine, corpus.embeddings, table.strip('"'), schema_name=backend.schema
    )
    loop = asyncio.get_running_loop()

    def via_langchain(text: str) -> object:
        coroutine = store.asimilarity_search_with_score_by_vector(vectors[text], k=50)
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    paths: dict[str, Any] = {}
    paths["PGVectorStore"] = await asyncio.to_thread(timed_queries, clock, via_langchain, texts)
    exact = {t: list(backend.dense(corpus.collection, vectors[t], 50)) for t in texts}
    paths["direct_sql_exact"] = timed_queries(
        clock, lambda t: backend.dense(corpus.collection, vectors[t], 50), texts
    )
    async with db.pool.connection() as conn:
        await conn.execute(f"CREATE INDEX bench_hnsw ON {table} USING hnsw (embedding vector_cosine_ops)")
    try:
        paths["direct_sql_hnsw"] = timed_queries(
            clock, lambda t: backend.dense(corpus.collection, vectors[t], 50), texts
        )
        overlap = [
            len(set(exact[t]) & set(backend.dense(corpus.collection, vectors[t], 50))) / 50 for t in texts
        ]
        paths["hnsw_top50_overlap"] = round(sum(overlap) / len(overlap), 3)
    finally:
        async with db.pool.connection() as conn:
            await conn.execute("DROP INDEX bench_hnsw")
        await engine.close()
    return paths


async def main(beir: Path, rounds: int) -> dict[str, Any]:
    settings = get_settings()
    db = await Database.open(settings)
    model_embeddings, model = make_embeddings(settings)
    embeddings = EmbedOnce(model_embeddings)
    result: dict[str, Any] = {"fusion": settings.hybrid_fusion, "backends": {}}
    try:
        for name in ("qdrant", "pgvector"):
            backend: VectorBackend = (
                QdrantBackend.open(settings) if name == "qdrant" else await PgVectorBackend.open(db)
            )
            try:
                result["backends"][name] = await measure(
                    settings, db, backend, embeddings, model, beir, rounds
                )
            finally:
                backend.close()
    finally:
        await db.close()
    return result


def print_tables(result: dict[str, Any]) -> None:
    print("| backend | set | hybrid nDCG@10 | hybrid R@5 | dense nDCG@10 | sparse nDCG@10 |")
    print("|---|---|---|---|---|---|")
    for name, r in result["backends"].items():
        for label, modes in [("SciFact", r["beir"]), *r["book"].items()]:
            h, d, s = modes["hybrid"], modes["dense"], modes["sparse"]
            scores = (h["ndcg_at_10"], h["recall_at_5"], d["ndcg_at_10"], s["ndcg_at_10"])
            print(f"| {name} | {label} | " + " | ".join(f"{x:.4f}" for x in scores) + " |")
    print(
        "\n| backend | queries | p50 ms | p95 ms | CPU ms/query (client + Postgres) |\n|---|---|---|---|---|"
    )
    for name, r in result["backends"].items():
        for label, key in (
            ("book (hybrid, k=5)", "book_latency"),
            ("SciFact (hybrid, k=10)", "beir_latency"),
        ):
            t = r[key]
            print(f"| {name} | {label} | {t['p50_ms']} | {t['p95_ms']} | {t['cpu_ms_per_query']} |")
    paths = result["backends"].get("pgvector", {}).get("pgvector_read_paths")
    if paths:
        print("\npgvector dense leg on SciFact (top 50):")
        for label in ("PGVectorStore", "direct_sql_exact", "direct_sql_hnsw"):
            print(f"  {label}: {paths[label]}")
        print(f"  HNSW top-50 overlap with exact: {paths['hnsw_top50_overlap']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "benchmarks" / "scifact")
    parser.add_argument("--rounds", type=int, default=2, help="Passes over the book's questions when timing.")
    args = parser.parse_args()
    outcome = asyncio.run(main(args.beir, args.rounds))
    print_tables(outcome)
    print(json.dumps(outcome))
