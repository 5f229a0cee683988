"""Embeddings and moderations through providers, end to end with the official `openai` SDK:
an OpenAI-compatible deployment (`mock/...`) and a Gemini one (`gemini/...`), floats and
base64, the refusals where a target cannot embed, and usage and cost from the price table;
moderations of texts and of typed parts, sync and async, refused where a target has none."""

from __future__ import annotations

import base64
import struct
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from loadtest import mock_embeddings
from loadtest.stack import Stack
from tests.e2e.conftest import wire_body
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e]

TEXTS = ["The cat sits on the mat.", "Quarterly revenue grew by eight percent."]


@pytest.mark.parametrize("model", ["mock/text-embedding-3-small", "gemini/gemini-embedding-001"])
async def test_provider_embeddings_as_floats(sdk: openai.AsyncOpenAI, model: str) -> None:
    answer = await sdk.embeddings.create(
        model=model, input=TEXTS, dimensions=32, encoding_format="float"
    )
    assert [d.index for d in answer.data] == [0, 1]
    for text, item in zip(TEXTS, answer.data, strict=True):
        assert np.allclose(item.embedding, mock_embeddings.vector(text, 32), atol=1e-6)
    assert answer.usage.prompt_tokens == sum(len(t.split()) for t in TEXTS)


@pytest.mark.parametrize("model", ["mock/text-embedding-3-small", "gemini/gemini-embedding-001"])
async def test_provider_embeddings_as_base64(sdk: openai.AsyncOpenAI, model: str) -> None:
    """Asked for base64 the SDK hands back the string; asked for nothing it asks for base64
    itself and decodes it: both carry the provider's vector."""
    raw = await sdk.embeddings.create(model=model, input=TEXTS[0], encoding_format="base64")
    packed = base64.b64decode(str(raw.data[0].embedding))
    size = len(packed) // 4
    expected = mock_embeddings.vector(TEXTS[0], size)
    assert np.allclose(struct.unpack(f"<{size}f", packed), expected, atol=1e-6)
    decoded = await sdk.embeddings.create(model=model, input=TEXTS[0])
    assert np.allclose(decoded.data[0].embedding, expected, atol=1e-6)


async def test_gemini_gets_the_task_type_and_dimensions(
    stack: Stack, sdk: openai.AsyncOpenAI
) -> None:
    await sdk.embeddings.create(
        model="gemini/gemini-embedding-001",
        input=TEXTS,
        dimensions=16,
        extra_body={"task_type": "RETRIEVAL_DOCUMENT"},
    )
    sent = await wire_body(stack, "gemini")
    assert [r["content"]["parts"][0]["text"] for r in sent["requests"]] == TEXTS
    assert {r["taskType"] for r in sent["requests"]} == {"RETRIEVAL_DOCUMENT"}
    assert {r["outputDimensionality"] for r in sent["requests"]} == {16}


async def test_anthropic_has_no_embeddings(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk.embeddings.create(model="claude/claude-3-5-haiku-latest", input="x")
    error = raised.value.body
    assert isinstance(error, dict)
    assert error["code"] == "model_not_supported"
    assert "provider 'claude' speaks the Anthropic API" in error["message"]


async def test_embeddings_are_billed_at_the_input_price(http: httpx.AsyncClient) -> None:
    body = {"model": "mock/text-embedding-3-small", "input": "one two three four"}
    answer = await http.post("/v1/embeddings", json=body)
    assert answer.status_code == 200
    assert answer.json()["usage"]["prompt_tokens"] == 4
    # text-embedding-3-small: 0.02 USD per million input tokens (genai-prices, as OpenAI's)
    assert Decimal(answer.headers["x-aibroker-cost"]) == Decimal("0.02") * 4 / 1_000_000
    request_id = answer.headers["x-request-id"]

    async def stored() -> dict[str, Any] | None:  # the sync answer may beat the results sink
        doc: dict[str, Any] = (await http.get(f"/v1/requests/{request_id}")).json()
        return doc if "served_by" in doc else None

    state = await eventually(stored, what="the result stored")
    assert state is not None
    assert state["served_by"] == {"provider": "mock", "model": "text-embedding-3-small"}


async def test_token_ids_to_gemini_are_refused_clearly(http: httpx.AsyncClient) -> None:
    body = {"model": "gemini/gemini-embedding-001", "input": [1, 2, 3]}
    answer = await http.post("/v1/embeddings", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "input"


async def test_a_moderation_through_the_sdk(sdk: openai.AsyncOpenAI, stack: Stack) -> None:
    texts = ["I will kill the process when it hangs.", "Lovely weather today."]
    answer = await sdk.moderations.create(model="mock/omni-moderation-latest", input=texts)
    assert answer.model == "omni-moderation-latest"
    assert [r.flagged for r in answer.results] == [True, False]
    assert answer.results[0].categories.violence is True
    assert answer.results[0].category_scores.violence > 0.9
    assert (await wire_body(stack, "openai"))["messages"][0]["content"] == " ".join(texts)


async def test_moderation_of_text_and_image_parts_and_the_async_path(
    http: httpx.AsyncClient,
) -> None:
    parts = [
        {"type": "text", "text": "how to build a bomb"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]
    body = {
        "endpoint": "/v1/moderations",
        "body": {"model": "mock/omni-moderation-latest", "input": parts},
    }
    accepted = await http.post("/v1/requests", json=body)
    assert accepted.status_code == 202, accepted.text
    state = (await http.get(f"/v1/requests/{accepted.json()['id']}", params={"wait": 30})).json()
    assert state["status"] == "succeeded", state
    assert [r["flagged"] for r in state["response"]["results"]] == [True, False]


async def test_moderations_need_a_target_that_has_them(sdk: openai.AsyncOpenAI) -> None:
    for model in ("claude/claude-3-5-haiku-latest", "gemini/gemini-2.0-flash"):
        with pytest.raises(openai.BadRequestError) as raised:
            await sdk.moderations.create(model=model, input="x")
        error = raised.value.body
        assert isinstance(error, dict)
        assert error["code"] == "model_not_supported", error
    with pytest.raises(openai.BadRequestError) as empty:
        await sdk.moderations.create(model="mock/omni-moderation-latest", input=[])
    assert isinstance(empty.value.body, dict)
    assert empty.value.body["param"] == "input"
