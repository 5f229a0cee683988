"""Kafka clients built from settings, tuned for latency, and envelope encoding."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel

from aibroker.settings import KafkaSettings
from aibroker.tracing import TracingProducer

M = TypeVar("M", bound=BaseModel)


def bootstrap(settings: KafkaSettings) -> str:
    if not settings.bootstrap:
        raise RuntimeError("AIBROKER_KAFKA_BOOTSTRAP is not set (aibroker dev sets it for you)")
    return settings.bootstrap


def make_producer(settings: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """acks=all always; idempotence per settings (the embedded Tansu broker refuses it)."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap(settings),
        "acks": "all",
        "enable_idempotence": settings.idempotent,
        "linger_ms": settings.linger_ms,
        "request_timeout_ms": settings.request_timeout_ms,
        "max_batch_size": 256 * 1024,
        "max_request_size": settings.max_message_bytes,
        **overrides,
    }
    return TracingProducer(**options)


def make_consumer(
    settings: KafkaSettings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    """Manual commits only: the worker commits what is done, never what was merely fetched."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
        "max_partition_fetch_bytes": settings.max_message_bytes,
        "request_timeout_ms": max(settings.request_timeout_ms, settings.session_timeout_ms + 5000),
        **overrides,
    }
    return AIOKafkaConsumer(*topics, **options)


@asynccontextmanager
async def running_producer(
    settings: KafkaSettings, **overrides: Any
) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(settings, **overrides)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def encode(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()


def decode(model: type[M], data: bytes | None) -> M:
    if data is None:
        raise ValueError("empty message")
    return model.model_validate_json(data)
