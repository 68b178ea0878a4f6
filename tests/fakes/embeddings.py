"""Deterministic fake embeddings: the same text always maps to the same unit vector.

Vectors come from a SHAKE-256 digest of the text, so they are stable across runs and processes
(unlike `hash()`), distinct for distinct texts, and need no model. Tests can compute the expected
vector with `fake_embedding` and compare.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from typing import Any

DEFAULT_DIMENSIONS = 64


def fake_embedding(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """An L2-normalised vector in [-1, 1]^dimensions derived from the text's bytes."""
    digest = hashlib.shake_256(text.encode("utf-8")).digest(4 * dimensions)
    raw = [value / 2**31 - 1.0 for value in struct.unpack(f"<{dimensions}I", digest)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def _texts(value: Any) -> list[str]:
    """The request's `input` as a list of texts; token-id inputs are keyed by their JSON form."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [json.dumps(value)]
    if isinstance(value, list):
        return [v if isinstance(v, str) else json.dumps(v) for v in value]
    raise ValueError(f"unsupported embeddings input: {type(value).__name__}")


def embeddings_body(body: dict[str, Any]) -> dict[str, Any]:
    """The `/v1/embeddings` response; honours `dimensions` and `encoding_format` ("float"/"base64")."""
    dimensions = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
    texts = _texts(body.get("input"))
    data = []
    for index, text in enumerate(texts):
        vector = fake_embedding(text, dimensions)
        encoded: list[float] | str = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(len(text.split()) for text in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", "text-embedding-3-small"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
