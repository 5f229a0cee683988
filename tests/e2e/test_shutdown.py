"""Shutdown is bounded whatever Kafka does: the dev stack stopped as a process supervisor
stops it (SIGTERM, SIGKILL 3 s later) with work waiting and a slow call in flight leaves no
process behind, and each service exits within its drain timeout with its Kafka gone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from aibroker.devstack.embedded import free_port
from aibroker.runtime.service import EXIT_MARGIN_S
from loadtest import faults
from loadtest.stack import Stack
from tests.services import RedisService

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


def wait_until(probe: Callable[[], bool], timeout_s: float, what: str | Callable[[], str]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if probe():
            return time.monotonic() - started
        time.sleep(0.2)
    said = what if isinstance(what, str) else what()
    raise AssertionError(f"{said}: not within {timeout_s:.0f}s")


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


def test_a_dev_stack_stopped_with_work_in_flight_leaves_no_process(
    dev_stack: tuple[subprocess.Popen[bytes], dict[str, str]],
) -> None:
    dev, env = dev_stack
    url = f"http://127.0.0.1:{env['AIBROKER_INGRESS_PORT']}"
    mock = f"http://127.0.0.1:{env['AIBROKER_DEV_MOCK_PORT']}"
    headers = {"Authorization": f"Bearer {env['AIBROKER_DEV_API_KEY']}"}

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 120, f"the dev stack ready ({Path(env['log']).read_text()[-2000:]})")
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        for _ in range(4):  # retried through the delay topics: waiting work
            body = {"model": "mock/fail-503", "messages": HELLO}
            client.post("/v1/chat/completions", json=body, headers={"Prefer": "respond-async"})

    def slow_sync_call() -> None:
        body = {"model": "mock/latency-60000", "messages": HELLO}
        with contextlib.suppress(httpx.HTTPError):  # the stack is going away under it
            httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=90)

    threading.Thread(target=slow_sync_call, daemon=True).start()

    def in_flight() -> bool:
        stats = httpx.get(f"{mock}/_stats", timeout=5).json()
        return bool(stats["in_flight"] >= 1 and stats["calls_by_model"].get("fail-503", 0) >= 4)

    wait_until(in_flight, 30, "the slow call in flight and the failing ones retried")
    before = marked(env["mark"])
    assert len(before) >= 8, before  # brokers, mock, the services: there is a stack to stop
    dev.send_signal(signal.SIGTERM)  # as a process supervisor stops it …
    try:
        dev.wait(3)
    except subprocess.TimeoutExpired:
        dev.kill()  # … and 3 s later, SIGKILL
        dev.wait()
    took = wait_until(
        lambda: not marked(env["mark"]),
        DRAIN_S + 2 * EXIT_MARGIN_S,
        lambda: f"every process of the stack gone (left: {describe(marked(env['mark']))})",
    )
    print(f"dev stack gone {took:.1f}s after SIGKILL; {len(before)} processes")


def test_each_service_exits_within_its_drain_timeout_with_kafka_gone(
    redis_svc: RedisService, tmp_path: Path
) -> None:
    with faults.running(faults.cuttable_kafka(tmp_path / "kafka")) as kafka:
        stack = Stack(
            kafka.settings,
            redis_svc.url,
            tmp_path / "s",
            extra_env={"AIBROKER_CONSUMER_DRAIN_TIMEOUT_S": str(DRAIN_S)},
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
