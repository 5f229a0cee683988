"""Pure translation of embeddings between OpenAI's shape and Gemini's `embed_content`
(the SDK sends `batchEmbedContents`): texts in, task type and dimensions in its config; vectors
back as an OpenAI embedding list, floats or base64."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

from aibroker.errors import InvalidRequest
from schemas.openai import EmbeddingsRequest

CHARS_PER_TOKEN = 4
"""Gemini's embeddings answer carries no token count on every deployment; where it does not,
tokens are estimated at this many characters each (its own documented rule of thumb)."""


def to_embed_content(body: EmbeddingsRequest) -> dict[str, Any]:
    """`embed_content` arguments. Gemini takes text only, so token-id inputs are refused."""
    value = body.input
    texts = [value] if isinstance(value, str) else value
    if not all(isinstance(t, str) for t in texts):
        raise InvalidRequest(
            "Gemini embedding models take text only, not token ids; send the strings.",
            param="input",
        )
    config: dict[str, Any] = {}
    if body.dimensions is not None:
        config["output_dimensionality"] = body.dimensions
    if body.task_type is not None:
        config["task_type"] = body.task_type
    return {"contents": [str(t) for t in texts], "config": config}


def estimated_tokens(texts: list[str]) -> int:
    return sum(max(1, math.ceil(len(t) / CHARS_PER_TOKEN)) for t in texts)


def from_embeddings(
    answer: dict[str, Any], texts: list[str], model: str, encoding_format: str
) -> dict[str, Any]:
    """The SDK's `EmbedContentResponse` (as a dict) as an OpenAI embedding list."""
    vectors = [e.get("values") or [] for e in answer.get("embeddings") or []]
    if len(vectors) != len(texts):
        raise ValueError(f"{len(vectors)} embeddings came back for {len(texts)} inputs")
    counted = (answer.get("usage_metadata") or {}).get("prompt_token_count")
    tokens = int(counted) if counted else estimated_tokens(texts)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encoded(v, encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def encoded(vector: list[float], encoding_format: str) -> list[float] | str:
    """`base64`: little-endian float32 bytes, as OpenAI sends them; `float`: the list."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return [float(x) for x in vector]
