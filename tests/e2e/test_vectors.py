"""`store` on an embeddings request: the vectors land in Qdrant (qdrant-client's local mode in
a directory, the pool its only writer), one point per input, redone requests overwrite."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtest.stack import Stack
from tests.e2e.conftest import running_stack
from tests.services import KafkaService, RedisService

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
pytest.importorskip("sentence_transformers", reason="needs the [embeddings] extra")
qdrant_client = pytest.importorskip("qdrant_client", reason="needs the [embeddings] extra")

TEXTS = ["The cat sat on the mat.", "Kafka keeps the requests; Redis keeps the answers."]


@pytest.fixture(scope="module")
def qdrant_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("qdrant")


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService,
    redis_svc: RedisService,
    qdrant_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    env = {"AIBROKER_EMBEDDINGS_QDRANT_URL": str(qdrant_dir)}
    logs = tmp_path_factory.mktemp("vectors")
    with running_stack(kafka, redis_svc, logs, embeddings=True, extra_env=env) as running:
        yield running


async def test_embeddings_are_stored_once_per_input(stack: Stack, qdrant_dir: Path) -> None:
    body = {
        "model": "all-minilm-l6-v2",
        "input": TEXTS,
        "store": {"collection": "docs", "ids": ["cat", 7], "payloads": [{"n": 1}, {"n": 2}]},
    }
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=60) as client:
        for _ in range(2):  # the same request twice: the same two points
            answer = await client.post("/v1/embeddings", json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["stored"] == {"collection": "docs", "points": 2}
        vector = answer.json()["data"][1]["embedding"]
        wrong = {**body, "store": {"collection": "docs", "ids": ["only-one"]}}
        refused = await client.post("/v1/embeddings", json=wrong)
        assert refused.status_code == 400
        assert "one entry per input" in refused.json()["error"]["message"]

    stack.kill("embed", signal.SIGTERM)  # local mode: one process at a time on the directory
    client = qdrant_client.QdrantClient(path=str(qdrant_dir))
    try:
        assert client.count("docs").count == 2
        (best, *_) = client.query_points("docs", query=vector, limit=2).points
        assert best.id == 7
        assert best.payload == {
            "text": TEXTS[1],
            "n": 2,
            "id": 7,
            "request_id": best.payload["request_id"],
        }
        assert best.score > 0.99
    finally:
        client.close()
