"""The vectors of an embeddings result, as the pools write them: `data[i].embedding`, base64
float32 (`encoding_format: base64`, what internal callers ask for) or a list of floats."""

from __future__ import annotations

import base64
import struct
from typing import Any

from schemas.envelopes import Result, Status


def vectors_of(result: Result) -> list[list[float]] | None:
    """Every embedding of a successful embeddings result, by index (base64 float32 or lists)."""
    if result.status is not Status.SUCCEEDED or result.response is None:
        return None
    data: Any = result.response.get("data")
    if not isinstance(data, list):
        return None
    ordered = sorted((d for d in data if isinstance(d, dict)), key=lambda d: int(d.get("index", 0)))
    vectors: list[list[float]] = []
    for item in ordered:
        encoded = item.get("embedding")
        if isinstance(encoded, str):
            raw = base64.b64decode(encoded)
            vectors.append(list(struct.unpack(f"<{len(raw) // 4}f", raw)))
        elif isinstance(encoded, list):
            vectors.append([float(x) for x in encoded])
        else:
            return None
    return vectors
