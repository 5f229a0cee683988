"""A provider down for 30 s while async requests keep arriving: after it recovers every
request completes, none is lost or answered twice, and none reached the provider again
before the Retry-After it was given."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Iterator

import httpx
import pytest

from loadtest.history import final_states, published_results
from loadtest.stack import Stack
from tests.e2e.conftest import running_stack
from tests.services import KafkaService, RedisService
from topics.catalog import TopicNames

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DOWN_S = 30.0
RETRY_AFTER_S = 2.0


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        "AIBROKER_BREAKER_MIN_CALLS": "4",
        "AIBROKER_BREAKER_COOLDOWN_S": "3",
        "AIBROKER_BREAKER_WINDOW_S": "10",
    }
    with running_stack(kafka, redis_svc, tmp_path_factory.mktemp("outage"), extra_env=env) as s:
        yield s


async def test_provider_down_for_30s_loses_nothing(stack: Stack, http: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=stack.mock_url) as mock:
        await mock.post(
            "/_control",
            json={"error_rate": 1.0, "error_status": 503, "retry_after": RETRY_AFTER_S},
        )
        ids: dict[str, str] = {}
        started = time.monotonic()
        while time.monotonic() - started < DOWN_S:  # 4 new requests a second, all the outage
            marker = f"outage-{len(ids)}"
            answer = await http.post(
                "/v1/requests",
                json={
                    "endpoint": "/v1/chat/completions",
                    "body": {
                        "model": "mock/echo",
                        "messages": [{"role": "user", "content": marker}],
                    },
                },
            )
            assert answer.status_code == 202
            ids[answer.json()["id"]] = marker
            await asyncio.sleep(0.25)
        await mock.post("/_control", json={})
        recovered = time.time()

        docs = list((await final_states(http, list(ids))).values())
        history = (await mock.get("/_history")).json()["calls"]

    assert [d["status"] for d in docs] == ["succeeded"] * len(ids)
    assert len(ids) >= 100
    counts = await published_results(stack.kafka, TopicNames(stack.prefix).results)
    assert {counts[i] for i in ids} == {1}  # one terminal result each: none lost, none twice

    calls: dict[str, list[float]] = defaultdict(list)
    for call in history:
        calls[call["text"]].append(call["at"])
    failed_calls = sum(1 for times in calls.values() for t in times if t < recovered)
    for marker, times in calls.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= RETRY_AFTER_S - 0.05 for g in gaps), (marker, gaps)
    # The breaker kept the outage from the provider: a few probes, not every request's attempts.
    assert failed_calls < len(ids) / 2, failed_calls
