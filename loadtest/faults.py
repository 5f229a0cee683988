"""Servers the chaos tests and the soak can stop and start again on the same address, keeping
their data: a Redis with an append-only file, and a Tansu broker storing in S3 (moto's S3
server, from the test extra) instead of memory, so that a restarted broker still has its
topics, records and committed offsets."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from aibroker import embedded
from aibroker.procs import die_with_parent, stop_process

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
class DurableKafka:
    """Tansu on S3: the S3 server (moto) runs throughout; the broker comes and goes."""

    s3: Restartable
    broker: Restartable

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.broker.port}"

    def start(self) -> None:
        self.s3.start()
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=f"http://{HOST}:{self.s3.port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",  # noqa: S106 (moto's S3 takes any)
        )
        client.create_bucket(Bucket="tansu")
        self.broker.start()

    def stop(self) -> None:
        self.broker.stop()
        self.s3.stop()


def durable_kafka(workdir: Path) -> DurableKafka:
    s3_port, port = embedded.free_port(), embedded.free_port()
    s3 = Restartable(
        "s3",
        [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(s3_port)],
        s3_port,
        workdir / "s3.log",
    )
    listener = f"tcp://{HOST}:{port}"
    broker_argv = [embedded.tansu_binary(), "broker", "--listener-url", listener]
    broker_argv += ["--advertised-listener-url", listener, "--storage-engine", "s3://tansu/"]
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT": f"http://{HOST}:{s3_port}",
        "AWS_ALLOW_HTTP": "true",
    }
    broker = Restartable("tansu", broker_argv, port, workdir / "tansu.log", env=env)
    return DurableKafka(s3, broker)
