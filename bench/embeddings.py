"""Benchmark the local all-MiniLM-L6-v2 (core/embeddings): load time, throughput, accuracy, per precision.

    uv run python bench/embeddings.py [--precision int8|fp32] [--runs 3] [--skip-corpus]

Measures, for each precision (both unless --precision is given):
  * model load: cold (empty cache: hash + build + quantise + session) and warm (cached model);
  * passages/s on 1,000 ~55-token passages (consecutive words of SciFact abstracts packed to 53 word
    pieces, 55 with [CLS]/[SEP]; deterministic), after a warm-up;
  * seconds to embed the 5,183 SciFact abstracts (title + " " + text, truncated at 256 tokens);
  * cosine to the sentence-transformers reference vectors (min and mean over the 8 texts).
The machine is shared and noisy, so every timing is the median of --runs runs (each run is listed in the
JSON line). Prints a Markdown table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from core.embeddings.local import LocalMiniLMEmbeddings  # noqa: E402
from core.embeddings.model_store import WEIGHTS_FILE, Precision, default_model_dir, sha256_of  # noqa: E402

SHARED = Path(os.environ.get("TUTOR_SHARED_DIR", ROOT.parent / "shared"))
SCIFACT = SHARED / "benchmarks" / "scifact" / "corpus.jsonl"
REFERENCE = SHARED / "benchmarks" / "minilm_reference.json"
PASSAGES = 1000
PASSAGE_PIECES = 53  # + [CLS] + [SEP] = 55 tokens


def load_scifact() -> list[dict[str, str]]:
    with SCIFACT.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def build_passages(docs: list[dict[str, str]], count: int = PASSAGES) -> list[str]:
    """Pack consecutive words of each abstract into passages of at most PASSAGE_PIECES word pieces."""
    tokenizer = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()  # tokenizer.json pads to 128, which would make every word "128 pieces"
    passages: list[str] = []
    for doc in docs:
        passages.extend(_pack_words(tokenizer, doc["text"].split()))
        if len(passages) >= count:
            return passages[:count]
    raise RuntimeError(f"SciFact yielded only {len(passages)} passages")


def _pack_words(tokenizer: Tokenizer, words: list[str]) -> Iterator[str]:
    """Yield only full passages; an abstract's short remainder is dropped to keep lengths uniform."""
    if not words:
        return
    pieces = [len(e.ids) for e in tokenizer.encode_batch(words, add_special_tokens=False)]
    current: list[str] = []
    used = 0
    for word, size in zip(words, pieces, strict=True):
        if used + size > PASSAGE_PIECES and current:
            yield " ".join(current)
            current, used = [], 0
        current.append(word)
        used += size


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_of(runs: int, action: Callable[[], object]) -> tuple[float, list[float]]:
    times = [timed(action) for _ in range(runs)]
    return statistics.median(times), [round(t, 3) for t in times]


def measure_loads(precision: Precision, runs: int, threads: int | None) -> dict[str, Any]:
    """Cold: a fresh cache dir each run. Warm: reload from the last cache dir (built model, cached hash)."""

    def load_seconds(cache: Path) -> float:
        return timed(lambda: LocalMiniLMEmbeddings(cache, precision, threads=threads))

    with tempfile.TemporaryDirectory(prefix="minilm-bench-") as tmp:
        cold = [load_seconds(Path(tmp) / f"cold{run}") for run in range(runs)]
        warm = [load_seconds(Path(tmp) / f"cold{runs - 1}") for _ in range(runs)]
    return {
        "cold_load_s": statistics.median(cold),
        "warm_load_s": statistics.median(warm),
        "cold_runs": [round(t, 3) for t in cold],
        "warm_runs": [round(t, 3) for t in warm],
    }


def reference_cosines(model: LocalMiniLMEmbeddings) -> dict[str, float] | None:
    if not REFERENCE.is_file():
        return None
    items = json.loads(REFERENCE.read_text(encoding="utf-8"))["items"]
    expected = np.array([item["embedding"] for item in items])
    actual = np.array(model.embed_documents([item["text"] for item in items]))
    cos = (actual * expected).sum(1) / (np.linalg.norm(actual, axis=1) * np.linalg.norm(expected, axis=1))
    return {"min": round(float(cos.min()), 5), "mean": round(float(cos.mean()), 5)}


def bench_precision(
    precision: Precision, passages: list[str], corpus: list[str] | None, args: argparse.Namespace
) -> dict[str, Any]:
    print(f"[{precision}] load ...", file=sys.stderr, flush=True)
    result: dict[str, Any] = measure_loads(precision, args.runs, args.threads)
    with tempfile.TemporaryDirectory(prefix="minilm-bench-") as tmp:
        model = LocalMiniLMEmbeddings(Path(tmp), precision, batch_size=args.batch_size, threads=args.threads)
        result["reference_cosine"] = reference_cosines(model)
        model.embed_documents(passages[:128])  # warm-up: first runs allocate and tune kernels
        print(f"[{precision}] passages ...", file=sys.stderr, flush=True)
        seconds, runs = median_of(args.runs, lambda: model.embed_documents(passages))
        result.update(passages_per_s=len(passages) / seconds, passage_runs_s=runs)
        if corpus is not None:
            print(f"[{precision}] SciFact corpus ...", file=sys.stderr, flush=True)
            seconds, runs = median_of(args.runs, lambda: model.embed_documents(corpus))
            result.update(corpus_s=seconds, corpus_runs_s=runs)
    return result


def markdown_table(results: Mapping[str, dict[str, Any]], corpus_size: int) -> str:
    lines = [
        f"| precision | passages/s (1,000 × ~55 tok) | SciFact {corpus_size:,} docs (s) | cold load (s) "
        "| warm load (s) | cosine vs reference min / mean |",
        "|---|---|---|---|---|---|",
    ]
    for precision, r in results.items():
        corpus = f"{r['corpus_s']:.1f}" if "corpus_s" in r else "—"
        cos = r["reference_cosine"]
        cosine = f"{cos['min']:.4f} / {cos['mean']:.4f}" if cos else "—"
        lines.append(
            f"| {precision} | {r['passages_per_s']:.0f} | {corpus} | {r['cold_load_s']:.2f} "
            f"| {r['warm_load_s']:.2f} | {cosine} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--precision", choices=["int8", "fp32"], help="only this precision (default: both)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per measurement; the median is kept")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="default: all CPUs available")
    parser.add_argument("--skip-corpus", action="store_true", help="skip the (minutes-long) SciFact run")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    docs = load_scifact()
    passages = build_passages(docs)
    corpus = None if args.skip_corpus else [f"{d['title']} {d['text']}" for d in docs]
    hash_s, _ = median_of(args.runs, lambda: sha256_of(default_model_dir() / WEIGHTS_FILE))
    precisions: list[Precision] = [args.precision] if args.precision else ["int8", "fp32"]
    results: dict[str, dict[str, Any]] = {p: bench_precision(p, passages, corpus, args) for p in precisions}
    machine = {
        "cpus": os.cpu_count(),
        "threads": args.threads or len(os.sched_getaffinity(0)),
        "batch_size": args.batch_size,
        "onnxruntime": onnxruntime.__version__,
        "processor": platform.processor() or platform.machine(),
    }
    print(markdown_table(results, len(docs)))
    print(f"\nsha256 of the 90 MB weights (what the verified-hash cache saves per warm load): {hash_s:.3f} s")
    summary = {"bench": "embeddings", "machine": machine, "sha256_s": round(hash_s, 3), "results": results}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
