"""OpenAI embeddings requests to Gemini's `embed_content`, and its vectors back."""

from __future__ import annotations

import base64
import struct

import pytest

from aibroker.errors import InvalidRequest
from consumers.providers.gemini.embed_wire import (
    estimated_tokens,
    from_embeddings,
    to_embed_content,
)
from schemas.openai import EmbeddingsRequest

pytestmark = pytest.mark.unit


def body(**fields: object) -> EmbeddingsRequest:
    return EmbeddingsRequest.model_validate({"model": "gemini-embedding-001", **fields})


@pytest.mark.parametrize(
    ("fields", "call"),
    [
        ({"input": "hi"}, {"contents": ["hi"], "config": {}}),
        (
            {"input": ["a", "b"], "dimensions": 256, "task_type": "RETRIEVAL_QUERY"},
            {
                "contents": ["a", "b"],
                "config": {"output_dimensionality": 256, "task_type": "RETRIEVAL_QUERY"},
            },
        ),
    ],
)
def test_requests_become_embed_content_calls(fields: dict[str, object], call: object) -> None:
    assert to_embed_content(body(**fields)) == call


@pytest.mark.parametrize("tokens", [[1, 2, 3], [[1, 2], [3]]])
def test_token_ids_are_refused(tokens: object) -> None:
    with pytest.raises(InvalidRequest) as raised:
        to_embed_content(body(input=tokens))
    assert raised.value.param == "input"


def test_vectors_come_back_as_an_openai_list_with_counted_tokens() -> None:
    answer = {
        "embeddings": [{"values": [0.5, -0.25]}, {"values": [1.0, 0.0]}],
        "usage_metadata": {"prompt_token_count": 7},
    }
    got = from_embeddings(answer, ["a", "b"], "gemini-embedding-001", "float")
    assert got == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -0.25]},
            {"object": "embedding", "index": 1, "embedding": [1.0, 0.0]},
        ],
        "model": "gemini-embedding-001",
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }


def test_base64_is_little_endian_float32_and_tokens_are_estimated_without_a_count() -> None:
    answer = {"embeddings": [{"values": [0.5, -0.25, 2.0]}]}
    got = from_embeddings(answer, ["twelve chars"], "m", "base64")
    raw = base64.b64decode(got["data"][0]["embedding"])
    assert struct.unpack("<3f", raw) == (0.5, -0.25, 2.0)
    assert got["usage"]["prompt_tokens"] == estimated_tokens(["twelve chars"]) == 3


def test_a_short_answer_is_an_error_not_a_silent_mismatch() -> None:
    with pytest.raises(ValueError, match="1 embeddings came back for 2 inputs"):
        from_embeddings({"embeddings": [{"values": [1.0]}]}, ["a", "b"], "m", "float")
