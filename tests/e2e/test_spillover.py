"""GPU-to-API spill-over, proven with the real all-MiniLM-L6-v2 pool: an alias whose first
target is the local embeddings pool (with `max_backlog`) and whose second is a provider's
embedding model is flooded. The overflow goes to the provider, every request ends once,
`served_by` says who served each, and the pool's backlog stays near its limit. The same with
`least_backlog`."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from aibroker.kafka.lag import lag_reader
from aibroker.routes import RouteTable
from loadtest.history import final_states
from loadtest.stack import Stack
from schemas.envelopes import Target
from tests.e2e.conftest import running_stack
from tests.services import KafkaService, RedisService
from topics.catalog import TopicNames

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
pytest.importorskip("sentence_transformers", reason="needs the [embeddings] extra")

MAX_BACKLOG = 20
FLOOD = 300
ROUTES = f"""
aliases:
  spill:
    - {{provider: embed, model: all-minilm-l6-v2, max_backlog: {MAX_BACKLOG}}}
    - {{provider: mock, model: text-embedding-3-small}}
  balanced:
    strategy: least_backlog
    targets:
      - {{provider: embed, model: all-minilm-l6-v2}}
      - {{provider: mock, model: text-embedding-3-small+latency-20}}
"""
LOCAL = Target(provider="embed", model="all-minilm-l6-v2")
TEXT = " ".join(["the broker moves requests between lanes and pools"] * 4)


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("spill")
    with running_stack(kafka, redis_svc, logs, embeddings=True, routes_yaml=ROUTES) as running:
        yield running


async def flood(stack: Stack, http: httpx.AsyncClient, alias: str) -> tuple[Counter[str], int]:
    """FLOOD async requests at once (4 texts each); who served them, and the highest backlog
    of the local pool seen meanwhile."""
    body = {"model": alias, "input": [f"{i} {TEXT}" for i in range(4)]}
    names = TopicNames(stack.prefix)
    topic = names.dispatch_local(LOCAL.provider, LOCAL.model)
    group = RouteTable(providers={}, aliases={}).group(LOCAL)
    peak = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        async with lag_reader(stack.kafka) as lags:
            while not done.is_set():
                peak = max(peak, await lags.lag(topic, group))
                await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch())
    headers = {"Prefer": "respond-async"}
    answers = await asyncio.gather(
        *(http.post("/v1/embeddings", json=body, headers=headers) for _ in range(FLOOD))
    )
    assert {a.status_code for a in answers} == {202}
    ids = [a.json()["id"] for a in answers]
    states = await final_states(http, ids)
    done.set()
    await watcher
    assert len(states) == FLOOD
    odd = [s for s in states.values() if s.get("status") != "succeeded"][:3]
    assert not odd, f"a request was lost: {odd}"
    served = Counter(json.dumps(s["served_by"], sort_keys=True) for s in states.values())
    return served, peak


def key(provider: str, model: str) -> str:
    return json.dumps({"model": model, "provider": provider}, sort_keys=True)


async def test_a_flood_spills_from_the_local_pool_to_the_provider(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    served, peak = await flood(stack, http, "spill")
    local, provider = (
        served[key("embed", "all-minilm-l6-v2")],
        served[key("mock", "text-embedding-3-small")],
    )
    print(f"spill: local {local}, provider {provider}, peak backlog {peak}")
    assert local + provider == FLOOD
    assert local > 0
    assert provider > 0
    # The dispatcher counts what it sent since its last lag read, so the pool's backlog stays
    # near its limit (lag counts work in flight until its offset is committed, every 200 ms).
    assert peak <= 2 * MAX_BACKLOG


async def test_least_backlog_shares_a_flood(stack: Stack, http: httpx.AsyncClient) -> None:
    served, peak = await flood(stack, http, "balanced")
    local = served[key("embed", "all-minilm-l6-v2")]
    provider = served[key("mock", "text-embedding-3-small+latency-20")]
    print(f"least_backlog: local {local}, provider {provider}, peak backlog {peak}")
    assert local + provider == FLOOD
    assert local > 0
    assert provider > 0
