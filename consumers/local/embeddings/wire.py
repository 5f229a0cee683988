"""Pure helpers of the embeddings pool: OpenAI inputs to texts, vectors to the OpenAI answer."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from aibroker.errors import InvalidRequest
from schemas.openai import EmbeddingsRequest

Vector = npt.NDArray[np.float32]


def input_texts(body: EmbeddingsRequest, decode: Callable[[list[int]], str]) -> list[str]:
    """The texts to embed: a string, a list of strings, or token ids (one list or a list of
    lists) turned back into text with the model's own tokenizer."""
    value = body.input
    if isinstance(value, str):
        return [value]
    if all(isinstance(item, str) for item in value):
        return [str(item) for item in value]
    if all(isinstance(item, int) for item in value):
        return [decode([item for item in value if isinstance(item, int)])]
    if all(isinstance(item, list) for item in value):
        return [decode([int(i) for i in item]) for item in value if isinstance(item, list)]
    raise InvalidRequest("input must not mix strings and token ids", param="input")


def token_inputs(body: EmbeddingsRequest) -> list[list[int]]:
    """The token-id inputs to turn back into text (none when the input is text)."""
    value = body.input
    if isinstance(value, str) or not value:
        return []
    if all(isinstance(item, int) for item in value):
        return [[item for item in value if isinstance(item, int)]]
    if all(isinstance(item, list) for item in value):
        return [[int(i) for i in item] for item in value if isinstance(item, list)]
    return []


def fit_dimensions(vector: Vector, dimensions: int | None) -> Vector:
    """The first `dimensions` components, re-normalised to unit length (how OpenAI's
    `dimensions` shortens an embedding); the vector itself when `dimensions` is unset."""
    if dimensions is None or dimensions == vector.shape[0]:
        return vector
    if dimensions > vector.shape[0]:
        raise InvalidRequest(
            f"dimensions must be at most {vector.shape[0]} for this model",
            param="dimensions",
        )
    cut = vector[:dimensions]
    norm = float(np.linalg.norm(cut))
    return cut / norm if norm else cut


def encode_vector(vector: Vector, encoding_format: str) -> list[float] | str:
    """`float`: a JSON list; `base64`: the little-endian float32 bytes, as OpenAI sends them."""
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return [float(x) for x in vector]


def embeddings_response(
    model: str, body: EmbeddingsRequest, vectors: Sequence[Vector], tokens: int
) -> dict[str, Any]:
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": encode_vector(fit_dimensions(v, body.dimensions), body.encoding_format),
        }
        for i, v in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
