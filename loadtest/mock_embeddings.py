"""The mock provider's embeddings: OpenAI's `POST /v1/embeddings` and Gemini's
`{model}:embedContent` / `{model}:batchEmbedContents`. A text's vector is fixed by the text
(a seeded unit vector), so a test can tell whose answer it got; tokens are counted as words."""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from typing import Any

DIMENSIONS = 64
"""Length of a vector when the request asks for no other."""


def vector(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def tokens(text: str) -> int:
    return max(1, len(text.split()))


def openai_texts(body: dict[str, Any]) -> list[str] | None:
    """The texts of an OpenAI embeddings body (token ids read as their decimal text), or None
    when it has no `input`."""
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [" ".join(str(v) for v in value)]
    if isinstance(value, list) and value:
        return [v if isinstance(v, str) else " ".join(str(i) for i in v) for v in value]
    return None


def openai_answer(body: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    size = int(body.get("dimensions") or DIMENSIONS)
    data = []
    for i, text in enumerate(texts):
        values = vector(text, size)
        embedding: list[float] | str = values
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{size}f", *values)).decode()
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    used = sum(tokens(t) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", "mock"),
        "usage": {"prompt_tokens": used, "total_tokens": used},
    }


def gemini_requests(body: dict[str, Any], method: str) -> list[dict[str, Any]]:
    """One `EmbedContentRequest` per input: `embedContent` is one, `batchEmbedContents` many."""
    if method == "embedContent":
        return [body]
    requests = body.get("requests")
    return requests if isinstance(requests, list) else []


def gemini_text(request: dict[str, Any]) -> str:
    parts = (request.get("content") or {}).get("parts") or []
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


def gemini_answer(requests: list[dict[str, Any]], method: str) -> dict[str, Any]:
    vectors = [
        {"values": vector(gemini_text(r), int(r.get("outputDimensionality") or DIMENSIONS))}
        for r in requests
    ]
    used = sum(tokens(gemini_text(r)) for r in requests)
    usage = {"promptTokenCount": used, "totalTokenCount": used}
    if method == "embedContent":
        return {"embedding": vectors[0], "usageMetadata": usage}
    return {"embeddings": vectors, "usageMetadata": usage}
