"""Redis loses everything (FLUSHALL, what a restart without persistence or a failover to an empty
replica leaves) under mixed traffic, with tenants and keys made through the admin API. Judged
by the history checker: every accepted request ends once, and succeeds (no tenant looked gone);
every live key and tenant works again within seconds, keys this ingress never saw included;
revoked keys and a deleted tenant's keys are refused throughout; results finished before the
loss are readable again. On one Redis, and with `AIBROKER_TEST_REDIS=cluster` on a three-master
cluster; the figures are printed (`-s`) for docs/operations/failure-drills.md."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from loadtest.history import TERMINAL, History
from loadtest.stack import Stack
from tests.e2e.chaos import with_fault
from tests.redis_loss import flush, own_redis
from tests.services import KafkaService, RedisService
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.slow]

MODEL = "mock/latency-300"
RESTORED_WITHIN_S = 20.0
"""Keys and tenants work again this soon after the loss. The keeper looks every 0.5 s and the
replay of a small control plane takes milliseconds: about 1 s (0.7-1.6 s alone on two cores),
the slowest of 18 runs 10.1 s at a load average of 21 (docs/operations/failure-drills.md)."""


@pytest.fixture
def lost(tmp_path: Path) -> Iterator[RedisService]:
    with own_redis(tmp_path / "redis") as service:
        yield service


@pytest.fixture
def stack(kafka: KafkaService, lost: RedisService, tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(kafka.settings, lost.url, tmp_path / "s")
    try:  # a start that fails half-way stops what it started too
        stack.start()
        yield stack
    finally:
        stack.stop()


@dataclass
class Made:
    """What the admin API made before the loss."""

    warm: list[str] = field(default_factory=list)
    """Live keys the ingress has looked up (in its cache)."""
    cold: list[str] = field(default_factory=list)
    """Live keys never used before the loss: only the rebuilt view knows them."""
    refused: list[str] = field(default_factory=list)
    """Revoked keys, and the keys of a deleted tenant (some never used)."""
    tenants: dict[str, dict[str, object]] = field(default_factory=dict)


async def made_by_admin(stack: Stack) -> Made:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    made = Made()
    async with httpx.AsyncClient(base_url=f"{stack.url}/admin/v1", headers=headers) as admin:

        async def key(tenant: str) -> tuple[str, str]:
            answer = await admin.post("/keys", json={"tenant": tenant})
            assert answer.status_code == 201, answer.text
            return answer.json()["key"], answer.json()["key_id"]

        for tenant in ("drill-a", "drill-b", "drill-gone"):
            body = {"limits": {"rpm": 100_000}, "models": ["mock/*"]}
            answer = await admin.put(f"/tenants/{tenant}", json=body)
            assert answer.status_code == 200, answer.text
            made.tenants[tenant] = answer.json()
        for tenant in ("drill-a", "drill-b"):
            made.warm.append((await key(tenant))[0])
            made.cold.append((await key(tenant))[0])
            for used in (True, False):
                revoked, key_id = await key(tenant)
                if used:
                    assert await status(stack, revoked) == 200
                assert (await admin.delete(f"/keys/{key_id}")).status_code == 200
                made.refused.append(revoked)
        made.refused.append((await key("drill-gone"))[0])
        assert (await admin.delete("/tenants/drill-gone")).status_code == 200
        del made.tenants["drill-gone"]
    for live in made.warm:
        assert await status(stack, live) == 200
    for refused in made.refused:  # within the key cache's TTL (the used ones were cached)

        async def refused_now(key: str = refused) -> bool:
            return await status(stack, key) == 401

        await eventually(refused_now, timeout_s=10, what="a revoked key refused")
    return made


async def status(stack: Stack, key: str) -> int:
    """What a call with `key` gets (0: no answer)."""
    try:
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
            answer = await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    except httpx.TransportError:
        return 0
    return answer.status_code


async def finished_before(client: httpx.AsyncClient, n: int = 10) -> dict[str, dict[str, object]]:
    """`n` async requests, long-polled until they end."""
    history = History(model=MODEL)
    for _ in range(n):
        await history.submit(client, sync=False)
    await history.settle(client)
    ended = {i: docs[-1] for i, docs in history.seen.items() if docs}
    assert len(ended) == n
    return ended


async def test_redis_flushed_under_traffic(
    stack: Stack, lost: RedisService, client_of: Callable[[Stack], httpx.AsyncClient]
) -> None:
    made = await made_by_admin(stack)
    client = client_of(stack)
    client.headers["Authorization"] = f"Bearer {made.warm[0]}"
    before = await finished_before(client)
    history = History(model=MODEL)
    restored: dict[str, float] = {}
    statuses: dict[str, list[int]] = {key: [] for key in made.refused + made.cold}

    async def probe(key: str, lost_at: float) -> None:
        got = await status(stack, key)
        statuses[key].append(got)
        if key in made.cold and got == 200:
            restored.setdefault(key, time.monotonic() - lost_at)

    async def fault() -> int:
        await flush(lost.url)
        lost_at = time.monotonic()
        while len(restored) < len(made.cold) and time.monotonic() - lost_at < 30:
            await asyncio.gather(*(probe(key, lost_at) for key in made.cold + made.refused))
        return 0  # a flush kills no call in flight: no provider call may be repeated

    await with_fault(stack, history, client, fault, n=120, rate=20.0)

    summary = history.summary()
    figures = {
        **summary,
        "lost": sum(1 for i in history.accepted if not history.seen.get(i)),
        "keys_restored_after_s": round(max(restored.values(), default=-1.0), 2),
        "answers_while_rebuilding": sorted({s for key in made.cold for s in statuses[key]}),
    }
    print(f"\nredis flushed under traffic: {json.dumps(figures)}")
    assert summary.get("ended_succeeded") == len(history.accepted), summary
    assert len(restored) == len(made.cold), statuses
    assert max(restored.values()) <= RESTORED_WITHIN_S
    for key in made.refused:
        assert 200 not in statuses[key], (key, statuses[key])
        assert await status(stack, key) == 401
    for key in made.warm + made.cold:
        assert await status(stack, key) == 200
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=f"{stack.url}/admin/v1", headers=headers) as admin:
        for name, doc in made.tenants.items():
            answer = await admin.get(f"/tenants/{name}")
            assert answer.status_code == 200, answer.text
            assert answer.json()["limits"] == doc["limits"]
        assert (await admin.get("/tenants/drill-gone")).status_code == 404

    async def readable() -> bool:
        for request_id, doc in before.items():
            answer = await client.get(f"/v1/requests/{request_id}")
            if answer.status_code != 200 or answer.json().get("status") not in TERMINAL:
                return False
            assert answer.json()["response"] == doc["response"]
        return True

    await eventually(readable, timeout_s=RESTORED_WITHIN_S, what="results of before the loss")
