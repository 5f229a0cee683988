"""`check_body`, the kind checks every way in shares: what it refuses, naming which field."""

from __future__ import annotations

from typing import Any

import pytest

from aibroker.errors import InvalidRequest
from aibroker.routes import LocalModel, Route, RouteTarget
from ingress.body_checks import check_body
from schemas.bodies import Body, kind_of
from schemas.envelopes import Kind
from schemas.openai import ChatCompletionRequest, EmbeddingsRequest, OcrRequest
from tests.routes import two_providers

pytestmark = pytest.mark.unit

TABLE = two_providers(
    spill=Route(
        targets=[
            RouteTarget(provider="embed", model="minilm"),
            RouteTarget(provider="a", model="text-embedding-3-small"),
        ]
    )
)
TABLE.local["minilm"] = LocalModel("minilm", "embed", "all-minilm-l6-v2")
STORE = {"collection": "docs"}


def embeddings(model: str, **extra: Any) -> EmbeddingsRequest:
    return EmbeddingsRequest(model=model, input="hi", **extra)


def ocr(url: str) -> OcrRequest:
    return OcrRequest(model="pp-ocrv4", image_url=url)


@pytest.mark.parametrize(
    ("body", "vector_store"),
    [
        (embeddings("minilm", store=STORE), True),  # a local pool writes the vectors
        (embeddings("embed/minilm", store=STORE), True),
        (embeddings("a/text-embedding-3-small"), False),  # no store asked for
        (ocr("https://example.com/page.png"), False),
        (OcrRequest(model="pp-ocrv4", image="aGk="), False),
        (ChatCompletionRequest(model="a/big", messages=[{"role": "user", "content": "hi"}]), False),
    ],
)
def test_bodies_a_pool_can_carry_out_pass(body: Body, vector_store: bool) -> None:
    check_body(body, TABLE, vector_store=vector_store)


@pytest.mark.parametrize(
    ("body", "vector_store", "param", "says"),
    [
        (embeddings("minilm", store=STORE), False, "store", "No vector store"),
        (embeddings("a/text-embedding-3-small", store=STORE), True, "store", "local embeddings"),
        (embeddings("spill", store=STORE), True, "store", "may be sent to a provider"),
        (ocr("ftp://example.com/page.png"), False, "image_url", "http or https"),
        (ocr("https://user:pw@example.com/page.png"), False, "image_url", "credentials"),
    ],
)
@pytest.mark.parametrize("where", ["", "body."])
def test_what_no_pool_would_carry_out_is_refused_naming_the_field(
    body: Body, vector_store: bool, param: str, says: str, where: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_body(body, TABLE, vector_store=vector_store, where=where)
    assert refused.value.param == f"{where}{param}"
    assert says in refused.value.message
    assert refused.value.http_status == 400


def test_each_body_knows_its_kind() -> None:
    assert kind_of(embeddings("minilm")) is Kind.EMBEDDINGS
    assert kind_of(ocr("https://example.com/a.png")) is Kind.OCR
    chat = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}])
    assert kind_of(chat) is Kind.CHAT
