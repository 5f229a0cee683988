"""Embeddings into Qdrant: what `store` on an embeddings request asks the pool to do.

One point per input: the vector, and a payload with the input's text, the caller's payload,
the caller's id and the request id. Qdrant takes unsigned integers or UUIDs as point ids; a
string id becomes a UUID derived from the collection and that string (the same string, the
same point), and inputs without ids get UUIDs derived from the request id and their index, so
a request redone after a crash overwrites its own points instead of adding more.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from consumers.local.embeddings.wire import Vector
from schemas.openai import VectorStore

NAMESPACE = uuid.UUID("5b3f8a2e-8a43-4f1e-9d7c-2c1f0e6a9b11")
"""Fixed: derived point ids must stay the same across releases."""


def point_id(collection: str, request_id: str, index: int, given: int | str | None) -> int | str:
    if isinstance(given, int) and given >= 0:
        return given
    name = f"{collection}/{given}" if given is not None else f"{request_id}/{index}"
    return str(uuid.uuid5(NAMESPACE, name))


def points(
    store: VectorStore, request_id: str, texts: Sequence[str], vectors: Sequence[Vector]
) -> list[models.PointStruct]:
    """The points of one request (pure: ids and payloads from the request alone)."""
    made = []
    for i, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        given = store.ids[i] if store.ids is not None else None
        payload: dict[str, Any] = dict(store.payloads[i]) if store.payloads else {}
        payload |= {"text": text, "request_id": request_id}
        if given is not None:
            payload["id"] = given
        made.append(
            models.PointStruct(
                id=point_id(store.collection, request_id, i, given),
                vector=[float(x) for x in vector],
                payload=payload,
            )
        )
    return made


QDRANT_TIMEOUT_S = 5
"""Seconds a call to a Qdrant server may take."""


class VectorSink:
    def __init__(self, client: AsyncQdrantClient) -> None:
        self._client = client
        self._ready: set[str] = set()

    @classmethod
    def connect(cls, url: str, api_key: str | None = None) -> VectorSink:
        """A Qdrant server by URL, or qdrant-client's local mode in a directory."""
        if url.startswith(("http://", "https://")):
            # A Qdrant that accepts and never answers fails the write after this (a
            # retryable provider error), never holds the pool's slot longer.
            return cls(AsyncQdrantClient(url=url, api_key=api_key, timeout=QDRANT_TIMEOUT_S))
        return cls(AsyncQdrantClient(path=url))

    async def write(self, collection: str, dimension: int, batch: list[models.PointStruct]) -> int:
        if collection not in self._ready:
            if not await self._client.collection_exists(collection):
                config = models.VectorParams(size=dimension, distance=models.Distance.COSINE)
                await self._client.create_collection(collection, vectors_config=config)
            self._ready.add(collection)
        await self._client.upsert(collection, points=batch, wait=True)
        return len(batch)

    async def aclose(self) -> None:
        await self._client.close()
