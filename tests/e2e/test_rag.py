"""Retrieval end to end: collections, index jobs through Kafka and the embeddings pool, search,
grounded answers (plain and streamed) through the normal chat path, re-indexing, deletion,
tenant isolation, OpenAI's vector stores through the unmodified `openai` SDK, and a RAG
worker killed in the middle of a job (nothing lost, nothing twice)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from aibroker.rag.chunking import chunk_text
from loadtest.stack import Stack
from tests.e2e.conftest import running_stack
from tests.services import KafkaService, RedisService

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
pytest.importorskip("sentence_transformers", reason="needs the [embeddings] extra")
pytest.importorskip("qdrant_client", reason="needs the [embeddings] extra")

DOCS = [
    {"id": "kafka", "text": "Kafka keeps every request in a log.", "metadata": {"topic": "kafka"}},
    {"id": "redis", "text": "Redis caches the answers for a day.", "metadata": {"topic": "redis"}},
    {"id": "cats", "text": "The cat sat on the warm mat all day.", "metadata": {"topic": "pets"}},
]
CHAT = "mock/echo"
"""The mock provider's chat model: its answer echoes the prompt, numbered sources included."""


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        "AIBROKER_RAG_QDRANT_URL": str(tmp_path_factory.mktemp("rag-qdrant")),
        "AIBROKER_RAG_EMBED_BATCH": "8",
        "AIBROKER_RAG_WAIT_S": "90",  # a loaded CI machine: the default is 30
    }
    logs = tmp_path_factory.mktemp("rag")
    with running_stack(kafka, redis_svc, logs, embeddings=True, rag=True, extra_env=env) as s:
        yield s


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=90) as c:
        yield c


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    made = await client.post("/v1/rag/collections", json=body)
    assert made.status_code == 200, made.text
    doc: dict[str, Any] = made.json()
    return doc


async def index(
    client: httpx.AsyncClient, collection: str, docs: list[dict[str, Any]]
) -> dict[str, Any]:
    """An index job, accepted at once, then followed to its end."""
    accepted = await client.post(
        "/v1/rag/index", json={"collection": collection, "documents": docs}
    )
    assert accepted.status_code == 202, accepted.text
    return await ended(client, accepted.json()["id"])


async def ended(client: httpx.AsyncClient, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            state = (await client.get(f"/v1/requests/{job_id}", params={"wait": 10})).json()
            if state["status"] in ("succeeded", "failed", "cancelled", "expired"):
                return dict(state)


async def search(client: httpx.AsyncClient, **body: Any) -> list[dict[str, Any]]:
    found = await client.post("/v1/rag/search", json=body)
    assert found.status_code == 200, found.text
    return list(found.json()["data"])


async def test_index_search_query_reindex_delete(client: httpx.AsyncClient) -> None:
    c = await create(client, name="notes", chunk_tokens=32, overlap_tokens=4)
    assert c["id"].startswith("vs_")
    assert c["dimensions"] == 384
    assert c["model"] == "all-minilm-l6-v2"
    assert c["chunk_tokens"] == 32

    job = await index(client, c["id"], DOCS)
    assert job["status"] == "succeeded", job
    assert [d["status"] for d in job["response"]["documents"]] == ["completed"] * 3

    hits = await search(client, collection=c["id"], query="Where are requests kept?", top_k=2)
    assert next(h["document_id"] for h in hits) == "kafka"
    assert hits[0]["text"] == DOCS[0]["text"]
    assert hits[0]["metadata"] == {"topic": "kafka"}
    assert len(hits) == 2
    assert hits[0]["score"] >= hits[1]["score"]
    only = await search(client, collection=c["id"], query="kept", filters={"topic": "pets"})
    assert [h["document_id"] for h in only] == ["cats"]
    assert await search(client, collection=c["id"], query="kept", score_threshold=0.99) == []
    hybrid = await search(client, collection=c["id"], query="warm mat cat", hybrid=True)
    assert hybrid[0]["document_id"] == "cats"

    answer = await client.post(
        "/v1/rag/query", json={"collection": c["id"], "query": "Where is a request?", "model": CHAT}
    )
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["sources"][0]["index"] == 1
    assert doc["sources"][0]["document_id"] == "kafka"
    assert f"[1] {DOCS[0]['text']}" in doc["answer"]  # the echo shows the numbered prompt
    assert {"embed_ms", "search_ms", "chat_ms"} <= set(doc["timings"])

    # Re-indexing replaces: a shorter text leaves no chunk of the longer one behind.
    long_text = " ".join(f"Sentence number {n} about brokers." for n in range(60))
    first = await index(client, c["id"], [{"id": "long", "text": long_text}])
    many = first["response"]["chunks"]
    assert many > 2
    shown = (await client.get(f"/v1/rag/collections/{c['id']}")).json()
    assert shown["points"] == 3 + many
    assert shown["documents"] == 4
    again = await index(client, c["id"], [{"id": "long", "text": "Now one short sentence."}])
    assert again["response"]["chunks"] == 1
    shown = (await client.get(f"/v1/rag/collections/{c['id']}")).json()
    assert shown["points"] == 4
    assert shown["documents"] == 4

    gone = await client.delete(f"/v1/rag/collections/{c['id']}/documents/long")
    assert gone.status_code == 200
    assert gone.json()["chunks"] == 1
    stats = (await client.get("/v1/rag/stats")).json()
    assert any(s["id"] == c["id"] and s["points"] == 3 for s in stats["data"])

    deleted = await client.delete(f"/v1/rag/collections/{c['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] is True
    assert (await client.get(f"/v1/rag/collections/{c['id']}")).status_code == 404


async def test_streamed_query_starts_with_its_sources(client: httpx.AsyncClient) -> None:
    c = await create(client)
    assert (await index(client, c["id"], DOCS))["status"] == "succeeded"
    body = {"collection": c["id"], "query": "Who caches answers?", "model": CHAT, "stream": True}
    events: list[Any] = []
    async with client.stream("POST", "/v1/rag/query", json=body) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        async for line in answer.aiter_lines():
            if line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append(data if data == "[DONE]" else orjson.loads(data))
    assert events[0]["object"] == "rag.sources"
    assert events[0]["sources"][0]["document_id"] == "redis"
    assert events[-1] == "[DONE]"
    text = "".join(
        (e["choices"][0]["delta"].get("content") or "")
        for e in events[1:-1]
        if isinstance(e, dict) and e.get("choices")
    )
    assert f"[1] {DOCS[1]['text']}" in text


async def test_a_file_is_extracted_and_indexed(client: httpx.AsyncClient) -> None:
    c = await create(client)
    page = (
        b"<html><body><h1>Billing</h1><p>Invoices are sent on the first Monday.</p></body></html>"
    )
    files = {"file": ("billing.html", page, "text/html")}
    uploaded = await client.post("/v1/files", data={"purpose": "assistants"}, files=files)
    assert uploaded.status_code == 200, uploaded.text
    file_id = uploaded.json()["id"]
    job = await index(client, c["id"], [{"file_id": file_id, "metadata": {"kind": "faq"}}])
    assert job["status"] == "succeeded", job
    hits = await search(client, collection=c["id"], query="When are invoices sent?")
    assert hits[0]["document_id"] == file_id
    assert "first Monday" in hits[0]["text"]
    assert "<p>" not in hits[0]["text"]
    assert hits[0]["metadata"] == {"kind": "faq", "filename": "billing.html"}


async def test_another_tenant_sees_nothing(stack: Stack, client: httpx.AsyncClient) -> None:
    c = await create(client)
    other = {"Authorization": f"Bearer {stack.new_key('tenant-rag-b')}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=other, timeout=90) as b:
        assert (await b.get(f"/v1/rag/collections/{c['id']}")).status_code == 404
        assert (await b.delete(f"/v1/rag/collections/{c['id']}")).status_code == 404
        found = await b.post("/v1/rag/search", json={"collection": c["id"], "query": "x"})
        assert found.status_code == 404
        job = await b.post("/v1/rag/index", json={"collection": c["id"], "documents": DOCS})
        assert job.status_code == 404
        assert (await b.get(f"/v1/vector_stores/{c['id']}")).status_code == 404
        listed = (await b.get("/v1/rag/collections")).json()["data"]
        assert c["id"] not in [x["id"] for x in listed]
    assert (await client.get(f"/v1/rag/collections/{c['id']}")).status_code == 200


async def test_the_openai_sdk_drives_vector_stores(stack: Stack) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.api_key, max_retries=0)
    store = await sdk.vector_stores.create(name="handbook")
    assert store.object == "vector_store"
    assert store.name == "handbook"
    text = b"# Holidays\n\nEvery employee has twenty-five days of paid leave a year.\n"
    added = await sdk.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("handbook.md", text), poll_interval_ms=100
    )
    assert added.status == "completed"
    assert added.vector_store_id == store.id
    page = await sdk.vector_stores.search(store.id, query="How many days of leave?")
    assert page.data[0].file_id == added.id
    assert page.data[0].filename == "handbook.md"
    assert "twenty-five days" in page.data[0].content[0].text
    again = await sdk.vector_stores.retrieve(store.id)
    assert again.file_counts.completed == 1
    assert again.usage_bytes == len(text)
    files = [f.id async for f in sdk.vector_stores.files.list(vector_store_id=store.id)]
    assert files == [added.id]
    assert store.id in [s.id async for s in sdk.vector_stores.list()]
    assert (await sdk.vector_stores.delete(store.id)).deleted is True
    with pytest.raises(openai.NotFoundError):
        await sdk.vector_stores.retrieve(store.id)
    await sdk.close()


async def test_a_worker_killed_mid_job_loses_and_doubles_nothing(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    c = await create(client, chunk_tokens=32, overlap_tokens=0)
    docs = [
        {"id": f"d{n}", "text": " ".join(f"Doc {n} line {k} on brokers." for k in range(40))}
        for n in range(20)
    ]
    accepted = await client.post("/v1/rag/index", json={"collection": c["id"], "documents": docs})
    job_id = accepted.json()["id"]
    async with asyncio.timeout(60):  # killed once it has written some of the documents
        while True:
            listed = (await client.get(f"/v1/rag/collections/{c['id']}/documents")).json()
            if sum(d["status"] == "completed" for d in listed["data"]) >= 2:
                break
            await asyncio.sleep(0.05)
    stack.kill("rag", signal.SIGKILL)
    killed = (await client.get(f"/v1/requests/{job_id}")).json()
    assert killed["status"] == "running"  # killed in the middle: its restart finishes it
    stack.start_service("rag")
    stack.wait_rag()
    job = await ended(client, job_id)
    assert job["status"] == "succeeded", job
    expected = sum(len(chunk_text(d["text"], size_tokens=32, overlap_tokens=0)) for d in docs)
    shown = (await client.get(f"/v1/rag/collections/{c['id']}")).json()
    assert shown["points"] == expected
    assert shown["documents"] == len(docs)
    assert job["response"]["chunks"] == expected
