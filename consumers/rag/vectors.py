"""Embeddings for retrieval, asked of the embeddings pool as ordinary requests: written to a
requests lane (index jobs to the batch lane, queries to the interactive one), so the
dispatcher admits them against the tenant's quota and routes them like any other, and read
back from Redis, where the results sink puts every result. Internal: no webhook announces
them. Redis calls take the client's ordinary deadline (no caller waits on a job's step). Each
request's id is given by the caller: an index job resumed after a crash asks again
under the same id and finds the embeddings it already paid for."""

from __future__ import annotations

import asyncio
import time

from aibroker.errors import BrokerError
from aibroker.kafka.publisher import Publisher
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import RequestStore
from aibroker.stores.semantic_cache import forget_result
from schemas.envelopes import ErrorInfo, Kind, Mode, Request, Result
from schemas.rag import RagJob
from schemas.vectors import vectors_of

POLL_S = 0.02
"""How often a wait for an embeddings result looks in Redis (a batch takes tens of ms)."""


class EmbeddingFailed(BrokerError):
    """The embeddings request ended without vectors; the job ends with its error."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(f"Embedding failed: {info.message}", code=info.code)
        self.wrapped = info

    def info(self) -> ErrorInfo:
        return self.wrapped.model_copy(update={"message": self.message})


class PoolVectors:
    def __init__(
        self,
        publisher: Publisher,
        results: RequestStore,
        redis: RedisClient,
        *,
        timeout_s: float,
    ) -> None:
        self._publisher = publisher
        self._results = results
        self._redis = redis
        self._timeout_s = timeout_s

    async def embed(
        self, job: RagJob, model: str, texts: list[str], *, request_id: str, bulk: bool
    ) -> list[list[float]]:
        """One vector per text, in order, embedded by `model` on behalf of the job's caller.
        `bulk`: the batch lane (an index job), else the interactive lane (a query)."""
        found = await self._results.get(request_id)
        if found is None:  # else asked already, before a crash: its result comes, or came
            now = time.time()
            request = Request(
                id=request_id,
                tenant=job.tenant,
                key_id=job.key_id,
                user=job.user,
                kind=Kind.EMBEDDINGS,
                model=model,
                body={"model": model, "input": texts, "encoding_format": "base64"},
                mode=Mode.BATCH if bulk else Mode.ASYNC,
                priority="batch" if bulk else "interactive",
                deadline=now + self._timeout_s,
                created_at=now,
                internal=True,
            )
            await self._publisher.submit(request)
        result = await asyncio.wait_for(self._result(request_id), self._timeout_s)
        vectors = vectors_of(result)
        if vectors is None or len(vectors) != len(texts):
            raise EmbeddingFailed(result.error or _no_vectors())
        return vectors

    async def forget(self, request_id: str) -> None:
        """Drop a read embeddings result from Redis (once its points are written)."""
        await forget_result(self._redis, request_id)

    async def _result(self, request_id: str) -> Result:
        while True:
            state = await self._results.get(request_id)
            if state is not None and state.result is not None:
                return state.result
            await asyncio.sleep(POLL_S)


def _no_vectors() -> ErrorInfo:
    return ErrorInfo(message="the pool answered without vectors", type="server_error")
