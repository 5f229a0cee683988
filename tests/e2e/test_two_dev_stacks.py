"""Two dev stacks started in the same instant on one machine (two checkouts, a stack and the
suite): each reserves its ports as `aibroker dev` does before it starts anything, runs the mock
provider on the port it got and binds the others as its services will; both run, and no port is
shared (before the reservations, both took 8090 and 9100 up, and one crash-looped)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.waiting import eventually

pytestmark = pytest.mark.e2e

ONE_STACK = """
import json, socket, subprocess, sys
from aibroker.devstack.dev import SERVICES
from aibroker.devstack.dev_ports import MOCK_HOST, reserve_dev_ports
from aibroker.devstack.reservations import PortBook
from aibroker.settings import load_settings

settings = load_settings()
with PortBook() as book:
    print("ready", flush=True)
    sys.stdin.readline()  # every stack goes at once
    ports = reserve_dev_ports(settings, [name for name, _ in SERVICES], book)
    mock = subprocess.Popen(
        [sys.executable, "-m", "loadtest.mock_provider", "--host", MOCK_HOST, "--port",
         str(ports.mock)]
    )
    bound = []
    for port in [ports.ingress, *ports.metrics.values()]:  # as the services will
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        bound.append(server)
    print(json.dumps({"ingress": ports.ingress, "mock": ports.mock, "metrics": ports.metrics}),
          flush=True)
    sys.stdin.readline()  # until the test is done
    mock.terminate()
    mock.wait(10)
"""


@pytest.fixture
def stacks(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Two stand-ins for `aibroker dev`, with the dev defaults (no port set)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIBROKER_")}
    made: list[subprocess.Popen[str]] = []
    with contextlib.ExitStack() as files:
        for n in range(2):
            log = files.enter_context((tmp_path / f"stack{n}.log").open("w"))
            made.append(
                subprocess.Popen(
                    [sys.executable, "-c", ONE_STACK],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    env=env,
                )
            )
        try:
            yield made
        finally:
            for proc in made:
                assert proc.stdin is not None
                assert proc.stdout is not None
                proc.stdin.close()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()


def reservations(proc: subprocess.Popen[str], log: Path) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"a stack failed: {log.read_text()[-2000:]}"
    got: dict[str, Any] = json.loads(line)
    return got


async def test_two_stacks_started_together_share_no_port(
    stacks: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    for proc in stacks:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
    for proc in stacks:  # the same instant, give or take a write
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    first, second = (reservations(p, tmp_path / f"stack{n}.log") for n, p in enumerate(stacks))

    def ports(got: dict[str, Any]) -> set[int]:
        return {got["ingress"], got["mock"], *got["metrics"].values()}

    assert not ports(first) & ports(second), (first, second)
    async with httpx.AsyncClient(timeout=5) as http:
        for got in (first, second):

            async def answers(mock: int = got["mock"]) -> bool:
                try:
                    return (await http.get(f"http://127.0.0.1:{mock}/_stats")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(answers, timeout_s=60, interval_s=0.1, what="both mocks answering")
        body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
        answer = await http.post(f"http://127.0.0.1:{first['mock']}/v1/chat/completions", json=body)
        assert answer.status_code == 200
        calls = [
            (await http.get(f"http://127.0.0.1:{got['mock']}/_stats")).json()["calls"]
            for got in (first, second)
        ]
    assert calls == [1, 0]  # two mocks, each on its own port
    assert all(proc.poll() is None for proc in stacks)
