"""Quota and circuit breakers on a real RedisClient, shared by two "replicas" (two clients)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from aibroker.limits import Limits
from aibroker.rules.breaker import State
from aibroker.stores.breaker import BreakerPolicy, RedisBreakers
from aibroker.stores.keys import RedisKeyStore
from aibroker.stores.keyspace import quota_scope
from aibroker.stores.quota import RedisQuota
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import cancel_key
from aibroker.stores.tenants import RedisTenantStore, Tenant, seed
from schemas.envelopes import Target
from tests.services import RedisService, redis_client

pytestmark = pytest.mark.integration

NOW = 1_800_000_000.0


@pytest.fixture
async def replica(redis_svc: RedisService) -> AsyncIterator[RedisClient]:
    """A second connection: what another dispatcher replica would use."""
    other = redis_client(redis_svc.url)
    yield other
    await other.aclose()


def tenant_name() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def rid() -> str:
    return f"req_{uuid.uuid4().hex}"


async def test_requests_per_minute_are_shared_by_replicas(
    redis: RedisClient, replica: RedisClient
) -> None:
    one, two = RedisQuota(redis, lease_s=60), RedisQuota(replica, lease_s=60)
    name = tenant_name()
    tenant = [(quota_scope(name), Limits(rpm=6))]
    admitted = [
        (await (one if i % 2 else two).admit(rid(), name, tenant, 0, NOW)).admitted
        for i in range(8)
    ]
    assert admitted == [True] * 6 + [False] * 2
    refused = await one.admit(rid(), name, tenant, 0, NOW)
    assert refused.limit == "tenant.rpm"
    assert refused.retry_after_s == pytest.approx(10.0)  # 6/min: one more every 10 s
    assert (await two.admit(rid(), name, tenant, 0, NOW + 10)).admitted


async def test_concurrent_admissions_never_exceed_the_limit(
    redis: RedisClient, replica: RedisClient
) -> None:
    one, two = RedisQuota(redis, lease_s=60), RedisQuota(replica, lease_s=60)
    name = tenant_name()
    tenant = [(quota_scope(name), Limits(rpm=25))]
    verdicts = await asyncio.gather(
        *((one if i % 2 else two).admit(rid(), name, tenant, 0, NOW) for i in range(100))
    )
    assert sum(v.admitted for v in verdicts) == 25


async def test_an_admission_is_charged_once_and_settled_once(redis: RedisClient) -> None:
    quota = RedisQuota(redis, lease_s=60)
    name = tenant_name()
    limits = [(quota_scope(name), Limits(rpm=2, concurrency=5))]
    request_id = rid()
    assert (await quota.admit(request_id, name, limits, 0, NOW)).admitted
    assert (await quota.admit(request_id, name, limits, 0, NOW)).admitted  # redelivered: free
    assert (await quota.admit(rid(), name, limits, 0, NOW)).admitted  # the second of 2/min
    assert await quota.in_flight(limits[0][0], NOW) == 2
    assert await quota.settle(request_id, name, None, None, NOW)
    assert not await quota.settle(request_id, name, None, None, NOW)
    assert await quota.in_flight(limits[0][0], NOW) == 1


async def test_concurrency_frees_a_slot_when_a_request_ends(redis: RedisClient) -> None:
    quota = RedisQuota(redis, lease_s=60)
    name = tenant_name()
    limits = [(quota_scope(name), Limits(concurrency=2))]
    first, second = rid(), rid()
    assert (await quota.admit(first, name, limits, 0, NOW)).admitted
    assert (await quota.admit(second, name, limits, 0, NOW)).admitted
    full = await quota.admit(rid(), name, limits, 0, NOW)
    assert full.limit == "tenant.concurrency"
    await quota.settle(first, name, None, None, NOW)
    assert (await quota.admit(rid(), name, limits, 0, NOW)).admitted


async def test_a_lost_result_frees_its_slot_after_the_lease(redis: RedisClient) -> None:
    quota = RedisQuota(redis, lease_s=30)
    name = tenant_name()
    limits = [(quota_scope(name), Limits(concurrency=1))]
    assert (await quota.admit(rid(), name, limits, 0, NOW)).admitted
    assert not (await quota.admit(rid(), name, limits, 0, NOW + 29)).admitted
    assert (await quota.admit(rid(), name, limits, 0, NOW + 31)).admitted


async def test_tokens_are_reconciled_with_real_usage(redis: RedisClient) -> None:
    quota = RedisQuota(redis, lease_s=60)
    name = tenant_name()
    limits = [(quota_scope(name), Limits(tpm=1000))]
    big = rid()
    assert (await quota.admit(big, name, limits, 900, NOW)).admitted
    over = await quota.admit(rid(), name, limits, 200, NOW)
    assert over.limit == "tenant.tpm"
    assert over.retry_after_s == pytest.approx(6.0)  # 100 short at 1000/min
    await quota.settle(big, name, 100, None, NOW)  # it used 100, not 900: 800 back
    assert (await quota.admit(rid(), name, limits, 200, NOW)).admitted


async def test_the_key_scope_limits_below_the_tenant(redis: RedisClient) -> None:
    quota = RedisQuota(redis, lease_s=60)
    name = tenant_name()
    tenant, key = (
        (quota_scope(name), Limits(rpm=100)),
        (quota_scope(name, uuid.uuid4().hex), Limits(rpm=1)),
    )
    assert (await quota.admit(rid(), name, [tenant, key], 0, NOW)).admitted
    refused = await quota.admit(rid(), name, [tenant, key], 0, NOW)
    assert refused.limit == "key.rpm"
    other_key = (quota_scope(name, uuid.uuid4().hex), Limits(rpm=1))
    assert (await quota.admit(rid(), name, [tenant, other_key], 0, NOW)).admitted


async def test_the_month_budget_counts_results_cost(redis: RedisClient) -> None:
    quota = RedisQuota(redis, lease_s=60)
    name = tenant_name()
    limits = [(quota_scope(name), Limits(budget_usd_month=Decimal("0.01")))]
    first = rid()
    assert (await quota.admit(first, name, limits, 0, NOW)).admitted
    await quota.settle(first, name, 10, Decimal("0.012"), NOW)
    assert await quota.spend(limits[0][0], NOW) == Decimal("0.012")
    spent = await quota.admit(rid(), name, limits, 0, NOW)
    assert spent.limit == "tenant.budget"
    assert spent.retry_after_s is None


async def test_a_cancelled_request_is_not_admitted(redis: RedisClient) -> None:
    quota = RedisQuota(redis, lease_s=60)
    name = tenant_name()
    request_id = rid()
    await redis.set(cancel_key(request_id), "1", ex=60)
    verdict = await quota.admit(request_id, name, [(quota_scope(name), Limits())], 0, NOW)
    assert verdict.cancelled


POLICY = BreakerPolicy(window_s=30, min_calls=4, failure_rate=0.5, cooldown_s=10, probe_timeout_s=5)


async def test_a_breaker_opens_on_failures_and_every_replica_sees_it(
    redis: RedisClient, replica: RedisClient
) -> None:
    pool, dispatcher = RedisBreakers(redis, POLICY, "t."), RedisBreakers(replica, POLICY, "t.")
    target = Target(provider="p", model=uuid.uuid4().hex)
    name = f"p/{target.model}"
    assert not await pool.record(target, True, NOW)
    assert not await pool.record(target, False, NOW + 1)
    assert not await pool.record(target, False, NOW + 2)
    assert await pool.record(target, False, NOW + 3)  # 3 of 4 failed: open
    assert (await dispatcher.states(NOW + 4))[name] is State.OPEN
    assert (await dispatcher.states(NOW + 14))[name] is State.HALF_OPEN
    assert await dispatcher.claim_probe(target)
    assert not await RedisBreakers(redis, POLICY, "t.").claim_probe(target)  # one probe at a time
    assert not await pool.record(target, True, NOW + 15)  # the probe succeeded: closed
    assert (await dispatcher.states(NOW + 15))[name] is State.CLOSED


async def test_a_failed_probe_opens_the_breaker_again(redis: RedisClient) -> None:
    breakers = RedisBreakers(redis, POLICY, "t.")
    target = Target(provider="p", model=uuid.uuid4().hex)
    for i in range(4):
        await breakers.record(target, False, NOW + i)
    assert await breakers.record(target, False, NOW + 20)  # half-open probe failed
    assert (await breakers.states(NOW + 21))[f"p/{target.model}"] is State.OPEN


async def test_failures_spread_over_windows_do_not_open(redis: RedisClient) -> None:
    breakers = RedisBreakers(redis, POLICY, "t.")
    target = Target(provider="p", model=uuid.uuid4().hex)
    for i in range(12):  # one failure in two, but only 3 calls per 30 s window
        assert not await breakers.record(target, i % 2 == 0, NOW + i * 10)


async def test_tenants_file_seeds_tenants_and_hashed_keys(
    redis: RedisClient, tmp_path: Path
) -> None:
    name = f"acme-{uuid.uuid4().hex[:6]}"
    key = f"aib_{uuid.uuid4().hex}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    path = tmp_path / "tenants.yaml"
    path.write_text(
        f"tenants:\n  - name: {name}\n    limits: {{rpm: 5, budget_usd_month: '2.5'}}\n"
        f"    models: ['mock/*']\n    keys:\n      - {{sha256: {digest}, prefix: aib_x, "
        "limits: {concurrency: 2}}\n"
    )
    tenants, keys = RedisTenantStore(redis), RedisKeyStore(redis)
    assert await seed(path, tenants, keys) == 1
    assert await seed(path, tenants, keys) == 1  # idempotent: every ingress seeds
    found = await tenants.get(name)
    assert found == Tenant(
        name=name, limits=Limits(rpm=5, budget_usd_month=Decimal("2.5")), models=["mock/*"]
    )
    info = await keys.lookup(key)
    assert info is not None
    assert info.tenant == name
    record = await keys.record(info.key_id)
    assert record is not None
    assert record.limits == Limits(concurrency=2)
    assert len(await keys.list(name)) == 1
