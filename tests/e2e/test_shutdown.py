"""Shutdown is bounded whatever Kafka does: the dev stack stopped as a process supervisor
stops it (SIGTERM, SIGKILL 3 s later) with work waiting and a slow call in flight leaves no
process behind, and each service exits within its drain timeout with its Kafka gone."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aibroker.devstack.embedded import free_port
from aibroker.runtime.service import EXIT_MARGIN_S
from loadtest import faults
from loadtest.stack import Stack
from tests.services import RedisService
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DRAIN_S = 5.0
HELLO = [{"role": "user", "content": "hello"}]


def marked(mark: str) -> list[int]:
    """The live processes whose environment carries `mark` (every process of one stack)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if mark.encode() in environ.read_bytes():
                stat = (environ.parent / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":  # a zombie has exited
                    found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def describe(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            command = "?"
        out.append(f"{pid} {command[:100]}")
    return out


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    mark = f"aib-shutdown-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "AIBROKER_SHUTDOWN_TEST_MARK": mark,
        "AIBROKER_DEV_DATA_DIR": str(tmp_path / "dev"),
        "AIBROKER_DEV_KAFKA": "tansu",
        "AIBROKER_INGRESS_PORT": str(free_port()),
        "AIBROKER_DEV_MOCK_PORT": str(free_port()),
        "AIBROKER_DEV_API_KEY": f"aib_{uuid.uuid4().hex}",
        "AIBROKER_CONSUMER_DRAIN_TIMEOUT_S": str(DRAIN_S),
        "AIBROKER_INGRESS_DRAIN_TIMEOUT_S": str(DRAIN_S),
    }
    log = (tmp_path / "dev.log").open("wb")
    dev = subprocess.Popen(
        [sys.executable, "-m", "aibroker", "dev"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield dev, env | {"mark": mark, "log": str(tmp_path / "dev.log")}
    for pid in marked(mark):  # whatever the test left: never another test's problem
        os.kill(pid, signal.SIGKILL)
    log.close()


async def test_a_dev_stack_stopped_with_work_in_flight_leaves_no_process(
    dev_stack: tuple[subprocess.Popen[bytes], dict[str, str]],
) -> None:
    dev, env = dev_stack
    url = f"http://127.0.0.1:{env['AIBROKER_INGRESS_PORT']}"
    mock = f"http://127.0.0.1:{env['AIBROKER_DEV_MOCK_PORT']}"
    headers = {"Authorization": f"Bearer {env['AIBROKER_DEV_API_KEY']}"}

    async with httpx.AsyncClient(headers=headers, timeout=10) as http:

        async def ready() -> bool:
            try:
                return (await http.get(f"{url}/health/ready", timeout=2)).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(ready, timeout_s=120, interval_s=0.2, what="the dev stack ready")
        for _ in range(4):  # retried through the delay topics: waiting work
            body = {"model": "mock/fail-503", "messages": HELLO}
            async_ = {"Prefer": "respond-async"}
            await http.post(f"{url}/v1/chat/completions", json=body, headers=async_)
        slow = {"model": "mock/latency-60000", "messages": HELLO}
        call = asyncio.create_task(http.post(f"{url}/v1/chat/completions", json=slow, timeout=90))

        async def in_flight() -> bool:
            stats = (await http.get(f"{mock}/_stats", timeout=5)).json()
            retried = stats["calls_by_model"].get("fail-503", 0) >= 4
            return bool(stats["in_flight"] >= 1 and retried)

        await eventually(in_flight, timeout_s=30, what="the slow call in flight, failures retried")
        await stop_as_a_supervisor(dev, env["mark"])
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await call  # the stack went away under it


async def stop_as_a_supervisor(dev: subprocess.Popen[bytes], mark: str) -> None:
    """SIGTERM, SIGKILL 3 s later; then no process of the stack may be left."""
    before = marked(mark)
    assert len(before) >= 8, before  # brokers, mock, the services: there is a stack to stop
    dev.send_signal(signal.SIGTERM)  # as a process supervisor stops it …
    try:
        dev.wait(3)
    except subprocess.TimeoutExpired:
        dev.kill()  # … and 3 s later, SIGKILL
        dev.wait()
    killed = time.monotonic()

    async def gone() -> bool:
        return not marked(mark)

    try:
        await eventually(gone, timeout_s=DRAIN_S + 2 * EXIT_MARGIN_S, interval_s=0.2)
    except AssertionError as exc:
        left = describe(marked(mark))
        raise AssertionError(f"processes of the stack still alive: {left}") from exc
    took = time.monotonic() - killed
    print(f"dev stack gone {took:.1f}s after SIGKILL; {len(before)} processes")


def test_each_service_exits_within_its_drain_timeout_with_kafka_gone(
    redis_svc: RedisService, tmp_path: Path
) -> None:
    with faults.running(faults.cuttable_kafka(tmp_path / "kafka")) as kafka:
        stack = Stack(
            kafka.settings,
            redis_svc.url,
            tmp_path / "s",
            extra_env={
                "AIBROKER_CONSUMER_DRAIN_TIMEOUT_S": str(DRAIN_S),
                "AIBROKER_INGRESS_DRAIN_TIMEOUT_S": str(DRAIN_S),
            },
        )
        stack.start()
        try:
            kafka.cut()  # every connection dropped, new ones refused
            took = {}
            for name in list(stack.procs):
                proc = stack.procs[name]
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                proc.wait(DRAIN_S + 3 * EXIT_MARGIN_S)
                took[name] = round(time.monotonic() - started, 1)
            print(f"exit times with Kafka gone: {took}")
            assert all(t <= DRAIN_S + EXIT_MARGIN_S + 1.5 for t in took.values()), took
        finally:
            stack.stop()
