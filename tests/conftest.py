"""Session services (real Kafka, real Redis) and per-test isolation (own topic prefix)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from aibroker.settings import RedisSettings, Settings
from tests.services import (
    KafkaService,
    RedisService,
    engine_note,
    kafka_engine,
    kafka_service,
    redis_service,
)


def pytest_report_header() -> str:
    return engine_note(kafka_engine())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(engine_note(kafka_engine()))


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def kafka(workdir: Path) -> Iterator[KafkaService]:
    with kafka_service(workdir) as service:
        yield service


@pytest.fixture(scope="session")
def redis_svc(workdir: Path) -> Iterator[RedisService]:
    with redis_service(workdir) as service:
        yield service


@pytest.fixture
def prefix() -> str:
    """Every test has its own topics."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def settings(kafka: KafkaService, redis_svc: RedisService, prefix: str) -> Settings:
    return Settings(
        kafka=kafka.settings.model_copy(
            update={
                "topic_prefix": prefix,
                "partitions": 3,
                "session_timeout_ms": 6000,
                "heartbeat_interval_ms": 1000,
            }
        ),
        redis=RedisSettings(url=redis_svc.url),
    )


@pytest.fixture
async def redis(redis_svc: RedisService) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_svc.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
