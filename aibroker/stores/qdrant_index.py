"""The semantic cache's index in Qdrant (`semantic_cache.SemanticIndex`): a server by URL, or
qdrant-client's local mode in a directory or `:memory:` (what `aibroker dev` uses: nothing to
start). Only this module imports qdrant-client, and only a dispatcher with the semantic cache
configured imports this module.
"""

from __future__ import annotations

from qdrant_client import AsyncQdrantClient, models

from aibroker.stores.semantic_cache import IndexUnavailable, Neighbour, Point

SERVER_TIMEOUT_S = 5
"""Seconds one call to a Qdrant server may take (the caller's own deadline is shorter)."""


class QdrantIndex:
    def __init__(self, client: AsyncQdrantClient, *, server: bool) -> None:
        self._client = client
        self._server = server
        self._ready: set[str] = set()
        """Collections known to exist (they are never dropped by the broker)."""

    @classmethod
    def connect(cls, url: str, api_key: str | None = None) -> QdrantIndex:
        if url.startswith(("http://", "https://")):
            # No version check at start: it runs in a thread of its own, which fails loudly
            # when Qdrant is down then; a Qdrant that refuses a call is a miss anyway.
            client = AsyncQdrantClient(
                url=url, api_key=api_key, timeout=SERVER_TIMEOUT_S, check_compatibility=False
            )
            return cls(client, server=True)
        if url == ":memory:":
            return cls(AsyncQdrantClient(location=":memory:"), server=False)
        return cls(AsyncQdrantClient(path=url), server=False)

    async def nearest(
        self, collection: str, vector: list[float], context: str, now: float
    ) -> Neighbour | None:
        try:
            if not await self._exists(collection):
                return None
            found = await self._client.query_points(
                collection,
                query=vector,
                query_filter=_live(context, now),
                limit=1,
                with_payload=True,
            )
        except Exception as exc:  # the boundary: whatever qdrant-client raised, a miss
            raise IndexUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if not found.points:
            return None
        best = found.points[0]
        payload = best.payload or {}
        return Neighbour(
            id=str(best.id),
            score=float(best.score),
            text=str(payload.get("text", "")),
            key=str(payload.get("key", "")),
        )

    async def upsert(self, collection: str, point: Point) -> None:
        struct = models.PointStruct(
            id=point.id,
            vector=point.vector,
            payload={
                "text": point.text,
                "key": point.key,
                "context": point.context,
                "stored_at": point.stored_at,
                "expires_at": point.expires_at,
            },
        )
        try:
            await self._create(collection, len(point.vector))
            await self._client.upsert(collection, points=[struct], wait=True)
        except Exception as exc:  # the boundary, as above
            raise IndexUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def delete(self, collection: str, ids: list[str]) -> None:
        selector = models.PointIdsList(points=list(ids))
        try:
            await self._client.delete(collection, points_selector=selector, wait=False)
        except Exception as exc:  # the boundary, as above
            raise IndexUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        await self._client.close()

    async def _exists(self, collection: str) -> bool:
        if collection in self._ready:
            return True
        if await self._client.collection_exists(collection):
            self._ready.add(collection)
            return True
        return False

    async def _create(self, collection: str, dimension: int) -> None:
        """The collection, made on its first point; on a server, the context is indexed (every
        search filters by it). Two dispatchers making it at once: the loser finds it made."""
        if await self._exists(collection):
            return
        config = models.VectorParams(size=dimension, distance=models.Distance.COSINE)
        try:
            await self._client.create_collection(collection, vectors_config=config)
        except Exception:
            if not await self._client.collection_exists(collection):
                raise
        if self._server:
            keyword = models.PayloadSchemaType.KEYWORD
            await self._client.create_payload_index(collection, "context", keyword)
            await self._client.create_payload_index(
                collection, "expires_at", models.PayloadSchemaType.FLOAT
            )
        self._ready.add(collection)


def _live(context: str, now: float) -> models.Filter:
    """Points of this context only (a different system prompt, tools or parameters never
    match), and only those whose answer may still be cached."""
    return models.Filter(
        must=[
            models.FieldCondition(key="context", match=models.MatchValue(value=context)),
            models.FieldCondition(key="expires_at", range=models.Range(gte=now)),
        ]
    )
