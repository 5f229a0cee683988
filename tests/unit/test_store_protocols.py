"""Every Redis store is held to its Protocol: the services and routes are typed against the
Protocol, so a method whose signature drifts from it (or a Protocol member the store lacks)
fails here, by name, before any service runs."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from aibroker.stores import (
    batches,
    breaker,
    claims,
    files,
    idempotency,
    keys,
    quota,
    results,
    tenants,
    webhook_log,
)

pytestmark = pytest.mark.unit

PAIRS: list[tuple[Any, Any]] = [
    (results.RequestStore, results.RedisRequestStore),
    (claims.ClaimStore, claims.RedisClaimStore),
    (idempotency.IdempotencyStore, idempotency.RedisIdempotencyStore),
    (keys.KeyStore, keys.RedisKeyStore),
    (tenants.TenantStore, tenants.RedisTenantStore),
    (quota.Quota, quota.RedisQuota),
    (breaker.Breakers, breaker.RedisBreakers),
    (files.Files, files.RedisFiles),
    (files.FileStore, files.LocalFileStore),
    (batches.BatchStore, batches.RedisBatchStore),
    (webhook_log.WebhookLog, webhook_log.RedisWebhookLog),
]


def members(protocol: Any) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(protocol).items()
        if not name.startswith("_") and inspect.isfunction(value)
    }


@pytest.mark.parametrize(("protocol", "store"), PAIRS, ids=lambda c: c.__name__)
def test_the_store_has_each_method_of_its_protocol(protocol: Any, store: Any) -> None:
    for name, method in members(protocol).items():
        assert hasattr(store, name), f"{store.__name__} lacks {name}"
        theirs = inspect.signature(getattr(store, name))
        assert inspect.signature(method) == theirs, f"{store.__name__}.{name} drifted"
        assert inspect.iscoroutinefunction(method) == inspect.iscoroutinefunction(
            getattr(store, name)
        ), f"{store.__name__}.{name}: async in one, not in the other"


def test_the_check_can_fail() -> None:
    class Narrow:
        async def get(self, request_id: int) -> None: ...

    method = members(results.RequestStore)["get"]
    assert inspect.signature(method) != inspect.signature(Narrow.get)
