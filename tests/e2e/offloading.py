"""What the offload tests share: the offload pool as a process a test may kill and start
again, the models they offload, and what the mock and the usage topic say happened."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

import httpx

from aibroker.devstack.embedded import free_port
from aibroker.devstack.procs import stop_process
from aibroker.kafka.clients import decode, make_consumer
from aibroker.prices import PriceTable
from loadtest.stack import Stack
from schemas.envelopes import UsageEvent
from tests.waiting import eventually

MODEL = "mock/gpt-4o-mini"
"""Priced by genai-prices as OpenAI's gpt-4o-mini, whose batch price is half its own."""
LISTED = PriceTable({}, {"mock": "openai"}).find("mock", "gpt-4o-mini")
CLAUDE = "claude/claude-3-5-haiku-latest"
"""The mock's Anthropic API; its alias's policy is `always`."""
GEMINI = "gemini/echo"
"""The mock's Gemini API; its alias's policy is `always` (the table knows no price for it)."""


class Offloading:
    """The stack's offload pool, a process the test may kill and start again."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        env = {**self.stack.env(), "AIBROKER_METRICS_PORT": str(free_port())}
        argv = [sys.executable, "-m", "aibroker", "consumer", "offload"]
        with (self.stack.logs / f"offload-{self.starts}.log").open("ab") as log:
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

    def assigned(self, timeout_s: float = 120) -> None:
        """Wait until this start's pool has its partitions (a loaded machine takes a while)."""
        log = self.stack.logs / f"offload-{self.starts}.log"
        deadline = time.monotonic() + timeout_s
        while not (log.exists() and "pool.offload assigned" in log.read_text()):
            assert self.proc is not None
            assert self.proc.poll() is None, "the offload pool exited: see its log"
            assert time.monotonic() < deadline, "the offload pool was not assigned in time"
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, timeout_s=15)


async def mock_stats(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.mock_url) as mock:
        calls = (await mock.get("/_stats")).json()["calls_by_model"]
        batches = (await mock.get("/_batches")).json()
    return {"on_demand": calls.get("gpt-4o-mini", 0), **batches}


async def usage_of(stack: Stack, request_ids: set[str]) -> list[UsageEvent]:
    """Every usage event of these requests on the stack's usage topic, once all have one."""
    consumer = make_consumer(stack.kafka, f"{stack.prefix}usage", group_id=None)
    await consumer.start()
    events: list[UsageEvent] = []
    try:

        async def all_billed() -> bool:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                events.extend(decode(UsageEvent, r.value) for r in records)
            return request_ids <= {e.request_id for e in events}

        await eventually(all_billed, what="a usage event for every line", timeout_s=60)
    finally:
        await consumer.stop()
    return [e for e in events if e.request_id in request_ids]
