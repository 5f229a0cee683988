"""The semantic cache's index: one point per cached prompt (its last user turn embedded) in a
collection per tenant and target, found by cosine similarity among the points of the same
context. A point holds no answer, only the exact cache key the answer is kept under in Redis
(`response_cache.py`), so an answer never outlives its TTL there, and a point whose answer is
gone is a miss. The Qdrant implementation is `qdrant_index.py` (qdrant-client, imported only
where the semantic cache is configured).

| payload field | what |
| --- | --- |
| `text` | the last user turn, as the lexical guard reads it |
| `key` | the exact cache key of the request that stored it |
| `context` | the hash of everything else that can change the answer (a filter: must be equal) |
| `stored_at`, `expires_at` | Unix times; points past `expires_at` are never found |
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Protocol

from aibroker.stores.keyspace import request_key
from aibroker.stores.redis import RedisClient
from schemas.envelopes import Target

NAMESPACE = uuid.UUID("0e6f3c52-4a8e-4d7b-9a51-3c1f7d2e8b64")
"""Fixed: a point's id is derived from its exact key, so storing the same request again
overwrites its point instead of adding one."""


@dataclass(frozen=True)
class Point:
    """A prompt whose answer is (or will be) cached under `key`."""

    vector: list[float]
    text: str
    key: str
    context: str
    stored_at: float
    expires_at: float

    @property
    def id(self) -> str:
        return point_id(self.key)


@dataclass(frozen=True)
class Neighbour:
    """The nearest point of a context, and its cosine similarity to the query."""

    id: str
    score: float
    text: str
    key: str


class IndexUnavailable(Exception):
    """The index did not answer (down, hung, or refused the call): the lookup is a miss."""


class SemanticIndex(Protocol):
    async def nearest(
        self, collection: str, vector: list[float], context: str, now: float
    ) -> Neighbour | None:
        """The most similar live point of `context` in `collection` (None: none, or no
        collection yet)."""
        ...

    async def upsert(self, collection: str, point: Point) -> None:
        """Store `point` (the collection is made on its first point, sized to its vector)."""
        ...

    async def delete(self, collection: str, ids: list[str]) -> None: ...

    async def aclose(self) -> None: ...


def point_id(key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, key))


def collection_name(tenant: str, target: Target, embedding_model: str) -> str:
    """One collection per tenant, target and embedding model (vectors of two models are not
    comparable): `aib_sc_<hash>`, a name every Qdrant accepts whatever the tenant is called."""
    named = "\0".join([tenant, target.provider, target.model, embedding_model])
    return "aib_sc_" + hashlib.sha256(named.encode()).hexdigest()[:32]


async def forget_result(redis: RedisClient, request_id: str) -> None:
    """Delete the state and result the results sink stored for one of the semantic cache's
    own embeddings requests, once read: nobody else asks for them, and kept for the
    results' TTL they would cost Redis memory for every lookup."""
    # One command: a request's keys share its hash slot (`keyspace`).
    await redis.unlink(request_key("res", request_id), request_key("req", request_id))
