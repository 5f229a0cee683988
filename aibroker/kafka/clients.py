"""Kafka clients built from settings (connection and security options in one place, tuned per
engine), and envelope encoding."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import TopicPartition
from pydantic import BaseModel

from aibroker.kafka.producer import Producer
from aibroker.settings import KafkaSettings

M = TypeVar("M", bound=BaseModel)


log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 5.0
"""How long closing a client may wait on the brokers at shutdown."""


def bootstrap(settings: KafkaSettings) -> str:
    if not settings.bootstrap:
        raise RuntimeError("AIBROKER_KAFKA_BOOTSTRAP is not set (aibroker dev sets it for you)")
    return settings.bootstrap


def connection(settings: KafkaSettings) -> dict[str, Any]:
    """Where and how every client connects: producers, consumers, the admin client."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap(settings),
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        context = create_ssl_context(
            cafile=settings.ssl_cafile and str(settings.ssl_cafile),
            certfile=settings.ssl_certfile and str(settings.ssl_certfile),
            keyfile=settings.ssl_keyfile and str(settings.ssl_keyfile),
        )
        context.check_hostname = settings.ssl_check_hostname
        options["ssl_context"] = context
    if settings.security_protocol.startswith("SASL_"):
        options |= {
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_plain_username": settings.sasl_username,
            "sasl_plain_password": settings.sasl_password,
        }
    return options


def make_admin(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection(settings), request_timeout_ms=30000)


def make_producer(settings: KafkaSettings, **overrides: Any) -> Producer:
    """acks=all always; idempotent unless the engine refuses it (the embedded Tansu)."""
    options: dict[str, Any] = {
        **connection(settings),
        "acks": "all",
        "enable_idempotence": settings.producer_idempotent,
        "linger_ms": settings.linger_ms,
        "request_timeout_ms": settings.request_timeout_ms,
        "max_batch_size": 256 * 1024,
        "max_request_size": settings.max_message_bytes,
        **overrides,
    }
    return Producer(options)


def make_consumer(
    settings: KafkaSettings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    """Manual commits only: the worker commits what is done, never what was merely fetched."""
    options: dict[str, Any] = {
        **connection(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": settings.fetch_wait_ms(),
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
        "max_partition_fetch_bytes": settings.max_message_bytes,
        "request_timeout_ms": max(settings.request_timeout_ms, settings.session_timeout_ms + 5000),
        **overrides,
    }
    return AIOKafkaConsumer(*topics, **options)


@asynccontextmanager
async def running_producer(settings: KafkaSettings, **overrides: Any) -> AsyncIterator[Producer]:
    producer = make_producer(settings, **overrides)
    await producer.start()
    try:
        yield producer
    finally:
        # Flushing waits on the brokers; gone, they must not hold the process (what was not
        # acknowledged was not committed either, so it is redone).
        try:
            await asyncio.wait_for(producer.stop(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("producer not flushed within %.0fs; closing anyway", STOP_TIMEOUT_S)


def encode(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()


def decode(model: type[M], data: bytes | None) -> M:
    if data is None:
        raise ValueError("empty message")
    return model.model_validate_json(data)


async def wait_for_brokers(settings: KafkaSettings, count: int, timeout_s: float = 120) -> None:
    """Until the cluster answers metadata with `count` brokers (a replication factor of 3 needs
    all three registered)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    seen = 0
    host, _, port = bootstrap(settings).split(",")[0].rpartition(":")
    while loop.time() < deadline:
        try:  # a plain TCP connect first: a client would log every refused attempt
            _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
        except OSError:
            await asyncio.sleep(0.3)
            continue
        admin = make_admin(settings)
        try:
            await asyncio.wait_for(admin.start(), 10)
            seen = len((await asyncio.wait_for(admin.describe_cluster(), 10))["brokers"])
            if seen >= count:
                return
        except (KafkaError, TimeoutError, OSError):
            pass
        finally:
            await admin.close()
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{count} Kafka brokers expected at {settings.bootstrap}, {seen} seen")


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """A topic's partitions from fresh cluster metadata. (`partitions_for_topic` reads the
    consumer's cache, which knows only what it consumes, and `topics()` does not fill it.)"""
    cluster = await consumer._client.fetch_all_metadata()  # aiokafka has no public call for this
    return [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]
