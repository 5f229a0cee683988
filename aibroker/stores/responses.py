"""Stored responses in Redis, for `previous_response_id`, `GET /v1/responses/{id}/input_items`
and `GET /v1/responses/{id}` past the results' TTL: `aib:rsp:{<id>}` a hash of the request's
`tenant`, its `body` (the input the model saw, earlier turns prepended) and, once it ended,
its `output` items and whole `response`; and `aib:rspev:{<id>}`, a background response's
stream events (a Redis stream whose entry ids are `0-<sequence number + 1>`, so a resume
after N reads from `0-<N + 1>` on). Both last the tenant's retention, counted from the
request (the events from their last); a response sent with `store: false` has no record.

`aib:rsp-bg` lists background responses by creation time (the newest `BACKGROUND_KEPT`), for
`GET /admin/v1/responses`: a reader drops the ones it finds ended, so it holds those in
flight and a few just ended. One key: one write per background response, none for others."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from redis.exceptions import ResponseError

from aibroker.settings.responses import ResponsesSettings
from aibroker.stores.keyspace import request_key
from aibroker.stores.redis import RedisClient, write_together

# Record a stored response's output, only if the response is stored (kept at its request, and
# not deleted since): a `store: false` response, or a deleted one, is not brought back.
#   KEYS[1]  its record, `aib:rsp:{<id>}`
#   ARGV[1]  the output items (JSON)   ARGV[2]  the whole Response object (JSON)
# Returns 1 when recorded, 0 when there is no record.
_ENDED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'output', ARGV[1], 'response', ARGV[2])
return 1
"""


BACKGROUND = "aib:rsp-bg"
BACKGROUND_KEPT = 10_000


@dataclass(frozen=True)
class StoredResponse:
    id: str
    tenant: str
    body: dict[str, Any]
    """The request's body as written to Kafka: `input` holds the earlier turns too."""
    output: list[dict[str, Any]] | None
    """Its output items once it ended with an answer; None before."""
    response: dict[str, Any] | None = None
    """The Response object it ended with, read by `GET /v1/responses/{id}` for the retention
    (the request's state and result last the results' TTL only)."""


class ResponseStore(Protocol):
    """Stored responses (input and output) and background responses' stream events."""

    async def keep(self, response_id: str, tenant: str, body: dict[str, Any]) -> None:
        """Store a response's request, before it is written to Kafka."""
        ...

    async def ended(self, response_id: str, response: dict[str, Any]) -> bool:
        """Record the Response object a stored response ended with (and its output items);
        False when it is not stored."""
        ...

    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def forget(self, response_id: str) -> None:
        """Drop the record and the events (`DELETE /v1/responses/{id}`)."""
        ...

    async def append(self, response_id: str, tenant: str, events: list[dict[str, Any]]) -> None:
        """Keep stream events (numbered by `sequence_number`); one already kept is skipped."""
        ...

    async def events_after(
        self, response_id: str, after: int, block_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """The kept events numbered above `after`, waiting up to `block_ms` for one (None:
        not waiting)."""
        ...

    async def has_events(self, response_id: str) -> bool: ...

    async def background(self, count: int) -> list[str]:
        """The newest `count` background responses listed, newest first (ended ones too,
        until a reader takes them off with `settled`)."""
        ...

    async def settled(self, response_ids: list[str]) -> None: ...


class RedisResponseStore:
    def __init__(self, redis: RedisClient, settings: ResponsesSettings) -> None:
        self._redis = redis
        self._settings = settings
        self._ended = redis.register_script(_ENDED)

    async def keep(self, response_id: str, tenant: str, body: dict[str, Any]) -> None:
        key = _record(response_id)
        async with write_together(self._redis) as pipe:  # one key: one slot
            pipe.hset(key, mapping={"tenant": tenant, "body": orjson.dumps(body)})
            pipe.expire(key, self._settings.retention_of(tenant))
            await pipe.execute()
        if body.get("background"):
            async with write_together(self._redis) as pipe:
                pipe.zadd(BACKGROUND, {response_id: time.time()})
                pipe.zremrangebyrank(BACKGROUND, 0, -BACKGROUND_KEPT - 1)
                await pipe.execute()

    async def background(self, count: int) -> list[str]:
        """The newest `count` background responses listed, newest first."""
        return [str(m) for m in await self._redis.zrevrange(BACKGROUND, 0, count - 1)]

    async def settled(self, response_ids: list[str]) -> None:
        """Take ended (or expired) responses off the background list."""
        if response_ids:
            await self._redis.zrem(BACKGROUND, *response_ids)

    async def ended(self, response_id: str, response: dict[str, Any]) -> bool:
        output = orjson.dumps(response.get("output") or [])
        done = await self._ended(keys=[_record(response_id)], args=[output, orjson.dumps(response)])
        return bool(done)

    async def get(self, response_id: str) -> StoredResponse | None:
        found = await self._redis.hgetall(_record(response_id))
        if not found:
            return None
        output = orjson.loads(found["output"]) if found.get("output") else None
        response = orjson.loads(found["response"]) if found.get("response") else None
        tenant, body = str(found["tenant"]), orjson.loads(found["body"])
        return StoredResponse(response_id, tenant, body, output, response)

    async def forget(self, response_id: str) -> None:
        await self._redis.delete(_record(response_id), _events(response_id))

    async def append(self, response_id: str, tenant: str, events: list[dict[str, Any]]) -> None:
        key = _events(response_id)
        for event in events:
            try:
                await self._redis.xadd(
                    key,
                    {"e": orjson.dumps(event)},
                    id=f"0-{int(event['sequence_number']) + 1}",
                    maxlen=self._settings.events_cap,
                    approximate=True,
                )
            except ResponseError:  # kept before (a second writer, after a redelivery)
                continue
        await self._redis.expire(key, self._settings.retention_of(tenant))  # no NX on Redis 6

    async def events_after(
        self, response_id: str, after: int, block_ms: int | None = None
    ) -> list[dict[str, Any]]:
        # RESP2: [[key, [(entry id, fields), ...]]]
        read: Any = await self._redis.xread(
            {_events(response_id): f"0-{after + 1}"}, block=block_ms
        )
        return [orjson.loads(fields["e"]) for _, entries in read or [] for _, fields in entries]

    async def has_events(self, response_id: str) -> bool:
        return bool(await self._redis.exists(_events(response_id)))


def _record(response_id: str) -> str:
    return request_key("rsp", response_id)


def _events(response_id: str) -> str:
    return request_key("rspev", response_id)
