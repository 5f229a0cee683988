"""`aibroker rag`: the RAG worker. Reads `rag.jobs` (collection operations, index jobs,
searches), keeps the collections' definitions from `rag.collections`, and owns the Qdrant
client: a server by URL, or local mode in a directory, which only one process may open (so in
local mode run one worker)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from qdrant_client import AsyncQdrantClient

from aibroker.kafka.clients import make_consumer, running_producer, topic_partitions
from aibroker.kafka.publisher import Publisher
from aibroker.runtime.service import WorkerSpec, run_service
from aibroker.settings import RagSettings, Settings
from aibroker.stores.files import RedisFiles, file_store
from aibroker.stores.redis import connect
from aibroker.stores.results import RedisRequestStore
from consumers.rag.context import RagContext
from consumers.rag.handler import JobHandler
from consumers.rag.registry import Registry
from consumers.rag.vectors import PoolVectors
from topics.catalog import TopicNames

log = logging.getLogger(__name__)

SERVER_TIMEOUT_S = 30
"""Seconds one call to a Qdrant server may take (an upsert of a large batch included)."""


@contextlib.asynccontextmanager
async def qdrant_client(settings: RagSettings) -> AsyncIterator[AsyncQdrantClient]:
    url = settings.qdrant_url
    if not url:
        raise SystemExit("the RAG worker needs AIBROKER_RAG_QDRANT_URL (a server or a directory)")
    if url.startswith(("http://", "https://")):
        client = AsyncQdrantClient(
            url=url,
            api_key=settings.qdrant_api_key,
            timeout=SERVER_TIMEOUT_S,
            check_compatibility=False,
        )
    elif url == ":memory:":
        client = AsyncQdrantClient(location=":memory:")
    else:
        client = AsyncQdrantClient(path=url)
    try:
        yield client
    finally:
        await client.close()


async def run_rag(settings: Settings, stop: asyncio.Event) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    registry_reader = make_consumer(settings.kafka, group_id=None)
    async with (
        qdrant_client(settings.rag) as qdrant,
        connect(settings.redis) as redis,
        running_producer(settings.kafka) as producer,
    ):
        await registry_reader.start()
        try:
            if not await topic_partitions(registry_reader, names.rag_collections):
                raise SystemExit(f"no topic {names.rag_collections}: run `aibroker topics apply`")
            registry = Registry(registry_reader, producer, names.rag_collections)
            await registry.start()
            publisher = Publisher(producer, names, envelope_secret=settings.auth.envelope_secret)
            results = RedisRequestStore(redis, settings.redis.ttl_s)
            vectors = PoolVectors(
                publisher,
                results,
                redis,
                timeout_s=settings.rag.embed_timeout_s,
            )
            ctx = RagContext(
                settings=settings.rag,
                registry=registry,
                qdrant=qdrant,
                vectors=vectors,
                files=RedisFiles(redis, file_store(settings.batch)),
                results=results,
                publisher=publisher,
                names=names,
            )
            handler = JobHandler(ctx)
            spec = WorkerSpec(
                "rag", [names.rag_jobs], "aib-rag", handler.on_job, settings.rag.concurrency
            )
            log.info("rag worker ready (qdrant %s)", settings.rag.qdrant_url)
            await run_service(settings, producer, [spec], stop)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(registry_reader.stop(), 5)
