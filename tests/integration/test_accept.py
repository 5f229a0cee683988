"""One accept pipeline: a body is refused for the same reason, naming the same field, whichever
way it comes in (its own route, `POST /v1/requests`, a batch line), and accepted alike too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from aibroker.settings import ProviderSettings, Settings
from tests.ingress_app import Served, serving

pytestmark = [pytest.mark.integration]

PROVIDER_STORE = {
    "model": "mock/text-embedding-3-small",
    "input": ["a", "b"],
    "store": {"collection": "docs"},
}
"""Vectors to store, from a model that goes to a provider (whose client would drop `store`)."""
LOCAL_STORE = {**PROVIDER_STORE, "model": "minilm"}

CASES = [  # endpoint, a body it takes, one it refuses, the field named, what the message says
    ("/v1/embeddings", LOCAL_STORE, PROVIDER_STORE, "store", "local embeddings pools only"),
    (
        "/v1/ocr",
        {"model": "pp-ocrv4", "image": "aGk="},
        {"model": "pp-ocrv4", "image_url": "ftp://example.com/page.png"},
        "image_url",
        "http or https",
    ),
]


@pytest.fixture
async def accepting(settings: Settings, tmp_path: Path) -> AsyncIterator[Served]:
    """Ingress with a provider `mock` (never reached: nothing runs the requests), a local
    embeddings model `minilm`, a local OCR model `pp-ocrv4` and a vector store configured."""
    mock = ProviderSettings(base_url="http://127.0.0.1:9/v1", api_key="unused")
    embeddings = settings.embeddings.model_copy(
        update={"models": {"minilm": "all-minilm-l6-v2"}, "qdrant_url": str(tmp_path / "q")}
    )
    ocr = settings.ocr.model_copy(update={"models": {"pp-ocrv4": "rapidocr"}})
    async with serving(settings, providers={"mock": mock}, embeddings=embeddings, ocr=ocr) as s:
        yield s


async def client_of(served: Served, **key: Any) -> httpx.AsyncClient:
    token, _ = await served.key(await served.tenant(), **key)
    return served.client(token)


@pytest.mark.parametrize(("endpoint", "good", "bad", "field", "says"), CASES)
async def test_a_body_is_judged_alike_on_its_route_and_through_v1_requests(
    accepting: Served, endpoint: str, good: Any, bad: Any, field: str, says: str
) -> None:
    async with await client_of(accepting) as client:
        taken, own = [
            await client.post(endpoint, json=body, headers={"Prefer": "respond-async"})
            for body in (good, bad)
        ]
        wrapped_taken, wrapped = [
            await client.post("/v1/requests", json={"endpoint": endpoint, "body": body})
            for body in (good, bad)
        ]
    assert (taken.status_code, wrapped_taken.status_code) == (202, 202), wrapped_taken.text
    assert (own.status_code, wrapped.status_code) == (400, 400), wrapped.text
    assert own.json()["error"]["param"] == field
    assert wrapped.json()["error"]["param"] == f"body.{field}"
    assert says in own.json()["error"]["message"]
    assert says in wrapped.json()["error"]["message"]


async def test_store_without_a_vector_store_is_refused_through_v1_requests(
    served: Served,
) -> None:
    async with await client_of(served) as client:
        wrapped = await client.post(
            "/v1/requests", json={"endpoint": "/v1/embeddings", "body": PROVIDER_STORE}
        )
    assert wrapped.status_code == 400, wrapped.text
    assert wrapped.json()["error"]["param"] == "body.store"
    assert "No vector store" in wrapped.json()["error"]["message"]


async def failed_batch(client: httpx.AsyncClient, endpoint: str, bodies: list[Any]) -> Any:
    """The errors of a batch of `bodies` (one line each), which must have failed at creation."""
    lines = [
        {"custom_id": f"line-{n}", "method": "POST", "url": endpoint, "body": body}
        for n, body in enumerate(bodies, start=1)
    ]
    data = b"\n".join(orjson.dumps(line) for line in lines) + b"\n"
    uploaded = await client.post(
        "/v1/files", files={"file": ("in.jsonl", data)}, data={"purpose": "batch"}
    )
    assert uploaded.status_code == 200, uploaded.text
    created = await client.post(
        "/v1/batches", json={"input_file_id": uploaded.json()["id"], "endpoint": endpoint}
    )
    assert created.status_code == 200, created.text
    batch = created.json()
    assert batch["status"] == "failed", batch
    return batch["errors"]["data"]


@pytest.mark.parametrize(("endpoint", "good", "bad", "field", "says"), CASES)
async def test_batch_lines_get_the_same_kind_checks(
    accepting: Served, endpoint: str, good: Any, bad: Any, field: str, says: str
) -> None:
    async with await client_of(accepting) as client:
        [error] = await failed_batch(client, endpoint, [good, bad])
    assert error["line"] == 2
    assert error["param"] == f"body.{field}"
    assert says in error["message"]


async def test_batch_lines_keep_to_the_keys_models(accepting: Served) -> None:
    body = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
    async with await client_of(accepting, models=["minilm"]) as client:
        [error] = await failed_batch(client, "/v1/chat/completions", [body])
        refused = await client.post("/v1/chat/completions", json=body)
    assert refused.status_code == 403  # as the route itself refuses it
    assert (error["line"], error["code"], error["param"]) == (1, "model_not_allowed", "body.model")
