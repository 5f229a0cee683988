"""Session services (real Kafka, real RedisClient) and per-test isolation (own topic prefix)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from aibroker.devstack import apache_kafka
from aibroker.settings import RedisSettings, Settings
from aibroker.stores.redis import RedisClient
from tests.services import (
    KafkaService,
    RedisService,
    engine_note,
    kafka_engine,
    kafka_service,
    redis_client,
    redis_service,
    require_apache_kafka,
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
async def redis(redis_svc: RedisService) -> AsyncIterator[RedisClient]:
    client = redis_client(redis_svc.url)
    if isinstance(client, RedisCluster):
        await client.initialize()  # its pub/sub needs the slot map (a command would fetch it)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[Callable[[apache_kafka.Cluster], apache_kafka.Running]]:
    """Apache Kafka clusters of the test's own, to kill, freeze or secure: a factory that starts
    a planned cluster (`tests.services.apache_cluster`) and stops it after the test. Needs Java
    and Maven: skipped without them, failed in CI."""
    require_apache_kafka()
    with contextlib.ExitStack() as stack:

        def start(cluster: apache_kafka.Cluster) -> apache_kafka.Running:
            return stack.enter_context(apache_kafka.running(cluster, tmp_path / "kafka-logs"))

        yield start
