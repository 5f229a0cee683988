"""The offload pools' provider batches in Redis: what each pool submitted, so that a restart
resumes polling and never submits a batch twice.

`aib:offload:{<provider>}` a hash, one field per provider batch (our id → `ProviderBatch`
JSON: its state, the provider's id once created, when to poll next); `aib:offload:lines:<our
id>` its lines (the request envelopes, JSON), written before the hash field, so a batch in the
hash always has its lines; `aib:offload:line:{<request id>}` the batch a line went into, which
a redelivered line reads to know it is taken. A batch leaves the hash only once each of its
lines has ended or gone back to the normal path. `aib:offload:intact` says the view is whole:
Redis is a cache here too, and the offload pool rebuilds it from its compacted topic when the
mark is gone (`consumers/offload/journal.py`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, TypeAdapter

from aibroker.stores.keyspace import request_key
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import cancel_key
from schemas.envelopes import Request

_REQUESTS = TypeAdapter(list[Request])


class BatchState(StrEnum):
    """Where a provider batch stands, as the pool saw it last."""

    SUBMITTING = "submitting"
    """Saved, its lines acknowledged, not yet known to be created at the provider: create it
    (after a restart, look for it at the provider first where its API allows)."""
    IN_PROGRESS = "in_progress"
    """Created at the provider: poll it until it ends."""


class ProviderBatch(BaseModel):
    id: str
    """Ours (`obat_…`), sent to the provider as metadata where its API takes any."""
    provider: str
    """The deployment's name (its dispatch topic's `<provider>`)."""
    group: str
    """What its lines share (OpenAI's: their endpoint, `/v1/chat/completions`)."""
    state: BatchState = BatchState.SUBMITTING
    provider_id: str | None = None
    """The provider's id of the batch, once created."""
    create_tried_at: float | None = None
    """When the pool first asked the provider to create it (kept durably before the call): a
    batch with this set may exist at the provider already, so it is looked for first."""
    created_at: float
    next_poll_at: float
    poll_delay_s: float
    lines: int
    give_up_at: float | None = None
    """When the pool stops waiting (its first line's deadline minus the margin): it cancels
    the provider batch, ends what was answered and sends the rest on demand."""


class OffloadStore(Protocol):
    async def add(self, batch: ProviderBatch, requests: list[Request], ttl_s: int) -> None: ...
    async def save(self, batch: ProviderBatch) -> None: ...
    async def in_flight(self, provider: str) -> list[ProviderBatch]: ...
    async def requests(self, batch: ProviderBatch) -> list[Request]: ...
    async def taken_by(self, request_id: str, provider: str) -> str | None: ...
    async def cancelled(self, request_ids: list[str]) -> set[str]: ...
    async def finish(self, batch: ProviderBatch) -> None: ...
    async def claimed(self, provider: str) -> set[str]: ...


def _batches_key(provider: str) -> str:
    return f"aib:offload:{{{provider}}}"


def _lines_key(batch_id: str) -> str:
    return f"aib:offload:lines:{batch_id}"


INTACT_KEY = "aib:offload:intact"


class RedisOffloadStore:
    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis

    async def add(self, batch: ProviderBatch, requests: list[Request], ttl_s: int) -> None:
        """A new batch: its lines, then the batch, then each line's mark (a line marked for a
        batch that is not in the hash is free again: see `taken_by`)."""
        await self.redis.set(_lines_key(batch.id), _REQUESTS.dump_json(requests), ex=ttl_s)
        await self.save(batch)
        for request in requests:
            await self.redis.set(request_key("offload:line", request.id), batch.id, ex=ttl_s)

    async def save(self, batch: ProviderBatch) -> None:
        await self.redis.hset(_batches_key(batch.provider), batch.id, batch.model_dump_json())

    async def in_flight(self, provider: str) -> list[ProviderBatch]:
        found = await self.redis.hgetall(_batches_key(provider))
        return [ProviderBatch.model_validate_json(doc) for doc in found.values()]

    async def requests(self, batch: ProviderBatch) -> list[Request]:
        raw = await self.redis.get(_lines_key(batch.id))
        return _REQUESTS.validate_json(raw) if raw else []

    async def taken_by(self, request_id: str, provider: str) -> str | None:
        """The batch in flight that holds this line, if any."""
        batch_id = await self.redis.get(request_key("offload:line", request_id))
        if batch_id is None:
            return None
        held = await self.redis.hexists(_batches_key(provider), batch_id)
        return str(batch_id) if held else None

    async def cancelled(self, request_ids: list[str]) -> set[str]:
        """Those of these requests a client cancelled (their flags, `aib:cancel:{<id>}`), read
        in one pipeline."""
        reads = self.redis.pipeline(transaction=False)
        for request_id in request_ids:
            reads.exists(cancel_key(request_id))
        flags = await reads.execute()
        return {r for r, flagged in zip(request_ids, flags, strict=True) if flagged}

    async def finish(self, batch: ProviderBatch) -> None:
        """Every line has ended or gone back: forget the batch (its line marks expire)."""
        await self.redis.hdel(_batches_key(batch.provider), batch.id)
        await self.redis.delete(_lines_key(batch.id))

    async def claimed(self, provider: str) -> set[str]:
        """The provider's ids of this provider's batches in flight (none may be adopted twice)."""
        return {b.provider_id for b in await self.in_flight(provider) if b.provider_id}

    async def intact(self) -> bool:
        return bool(await self.redis.exists(INTACT_KEY))

    async def mark_intact(self) -> None:
        await self.redis.set(INTACT_KEY, "1")
