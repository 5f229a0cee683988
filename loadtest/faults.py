"""Servers the chaos tests and the soak can take away and bring back on the same address,
keeping their data: a Redis with an append-only file, and a Kafka broker behind a proxy that
can be cut."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from aibroker.devstack import embedded
from aibroker.devstack.procs import die_with_parent, stop_process
from aibroker.settings import KafkaSettings

HOST = "127.0.0.1"


@dataclass
class Restartable:
    """A server process on a fixed port: `stop()` (SIGKILL or SIGTERM), `start()` again."""

    name: str
    argv: list[str]
    port: int
    log: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                preexec_fn=die_with_parent,
                start_new_session=True,
            )
        embedded.wait_for_port(HOST, self.port, 30, self.process)

    def stop(self, *, kill: bool = False) -> None:
        if self.process is not None:
            if kill:
                self.process.kill()
                self.process.wait()
            else:
                stop_process(self.process, timeout_s=10)
            self.process = None


class Startable(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


@contextlib.contextmanager
def running(server: S) -> Iterator[S]:
    """`server` started, and stopped however the block ends."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


def redis(workdir: Path) -> Restartable:
    """A Redis that keeps its data across a restart (append-only file, fsync every second)."""
    port = embedded.free_port()
    data = workdir / "redis-data"
    data.mkdir(parents=True, exist_ok=True)
    argv = [embedded.redis_binary(), "--port", str(port), "--bind", HOST, "--dir", str(data)]
    argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
    return Restartable("redis", argv, port, workdir / "redis.log")


def redis_url(server: Restartable) -> str:
    return f"redis://{HOST}:{server.port}/0"


@dataclass
class TroubledRedis:
    """A Redis reached through a TCP proxy: it can be frozen (SIGSTOP: what a partition, a
    failover in progress or a stuck fork looks like to a client) and made to answer every
    command late (the proxy holds each answer)."""

    server: Restartable
    proxy: Restartable

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.proxy.port}/0"

    def start(self) -> None:
        self.server.start()
        self.proxy.start()

    def freeze(self) -> None:
        self._signal(self.server, signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(self.server, signal.SIGCONT)

    def slow(self) -> None:
        self._signal(self.proxy, signal.SIGUSR1)

    def fast(self) -> None:
        self._signal(self.proxy, signal.SIGUSR2)

    def stop(self) -> None:
        self.thaw()
        self.proxy.stop()
        self.server.stop()

    @staticmethod
    def _signal(server: Restartable, sig: signal.Signals) -> None:
        assert server.process is not None
        server.process.send_signal(sig)


def troubled_redis(workdir: Path, *, delay_ms: float = 500) -> TroubledRedis:
    server = redis(workdir)
    port = embedded.free_port()
    argv = [sys.executable, "-m", "loadtest.tcpproxy", "--port", str(port)]
    argv += ["--to", f"{HOST}:{server.port}", "--delay-ms", str(delay_ms)]
    return TroubledRedis(server, Restartable("redis-proxy", argv, port, workdir / "proxy.log"))


@dataclass
class CuttableKafka:
    """An in-memory Tansu reached only through a TCP proxy that advertises itself: killing
    the proxy is a broker restart as clients see it (connections reset, then refused) while
    the broker keeps its topics, records and offsets. (Tansu's own durable engines are no use
    here: its S3 engine, tried on moto, lost records and misreported end offsets.)"""

    broker: Restartable
    proxy: Restartable

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.proxy.port}"

    @property
    def settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap=self.bootstrap, engine="tansu")

    def start(self) -> None:
        self.broker.start()
        self.proxy.start()

    def cut(self) -> None:
        """Every client connection dropped, and none taken, until `mend`."""
        self.proxy.stop(kill=True)

    def mend(self) -> None:
        self.proxy.start()

    def stop(self) -> None:
        self.proxy.stop()
        self.broker.stop()


def cuttable_kafka(workdir: Path) -> CuttableKafka:
    port, proxy_port = embedded.free_port(), embedded.free_port()
    broker_argv = [embedded.tansu_binary(), "broker", "--listener-url", f"tcp://{HOST}:{port}"]
    broker_argv += ["--advertised-listener-url", f"tcp://{HOST}:{proxy_port}"]
    broker_argv += ["--storage-engine", "memory://tansu/"]
    broker = Restartable("tansu", broker_argv, port, workdir / "tansu.log")
    proxy_argv = [sys.executable, "-m", "loadtest.tcpproxy", "--port", str(proxy_port)]
    proxy_argv += ["--to", f"{HOST}:{port}"]
    return CuttableKafka(
        broker, Restartable("proxy", proxy_argv, proxy_port, workdir / "proxy.log")
    )
