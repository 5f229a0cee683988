"""Redis that hangs, under mixed traffic (sync, async, a batch), judged by the history checker:
frozen (SIGSTOP) for 10 s and for 60 s, answering every command 500 ms late, and frozen while
a batch runs. Async submissions keep being accepted throughout, nothing accepted is lost and
nothing stays queued; what clients saw is printed (`-s`) for the README's failure section."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from loadtest import faults
from loadtest.history import History
from loadtest.stack import Stack
from tests.e2e.chaos import with_fault
from tests.e2e.fault_report import Window, during, recovery_s
from tests.services import KafkaService
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.slow]

MODEL = "mock/latency-300"


@pytest.fixture
def troubled(tmp_path: Path) -> Iterator[faults.TroubledRedis]:
    with faults.running(faults.troubled_redis(tmp_path / "redis", delay_ms=500)) as redis:
        yield redis


@pytest.fixture
def stack(kafka: KafkaService, troubled: faults.TroubledRedis, tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(kafka.settings, troubled.url, tmp_path / "s")
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def report(name: str, history: History, window: Window, recovered_s: float) -> dict[str, object]:
    seen = during(history, window) | {"recovered_after_s": recovered_s}
    print(f"\n{name}: {json.dumps(seen)}")
    return seen


@pytest.mark.parametrize(
    ("seconds", "rate"), [(10, 20.0), (60, 4.0)], ids=["frozen-10s", "frozen-60s"]
)
async def test_redis_frozen(
    stack: Stack,
    troubled: faults.TroubledRedis,
    client_of: Callable[[Stack], httpx.AsyncClient],
    seconds: int,
    rate: float,
) -> None:
    history, client = History(model=MODEL), client_of(stack)
    window = Window(0, 0)

    async def freeze() -> int:
        nonlocal window
        started = time.time()
        troubled.freeze()
        await asyncio.sleep(seconds)
        troubled.thaw()
        window = Window(started, time.time())
        return 0

    await with_fault(stack, history, client, freeze, n=int(rate * (seconds + 6)), rate=rate)
    seen = report(
        f"redis frozen {seconds}s", history, window, await recovery_s(client, MODEL, window.end)
    )
    assert seen["async_accepted"], "no async submission was accepted while Redis was frozen"
    assert seen["async_refused"] == 0, "async submissions were refused while Redis was frozen"


async def test_redis_answering_500ms_late(
    stack: Stack,
    troubled: faults.TroubledRedis,
    client_of: Callable[[Stack], httpx.AsyncClient],
) -> None:
    history, client = History(model=MODEL), client_of(stack)
    window = Window(0, 0)

    async def slow() -> int:
        nonlocal window
        started = time.time()
        troubled.slow()
        await asyncio.sleep(10)
        troubled.fast()
        window = Window(started, time.time())
        return 0

    await with_fault(stack, history, client, slow, n=20 * 16)
    seen = report("redis 500 ms late", history, window, await recovery_s(client, MODEL, window.end))
    assert seen["async_refused"] == 0, "async submissions were refused while Redis was slow"


async def test_redis_frozen_while_a_batch_runs(
    stack: Stack,
    troubled: faults.TroubledRedis,
    client_of: Callable[[Stack], httpx.AsyncClient],
) -> None:
    client = client_of(stack)
    lines = [
        {
            "custom_id": f"line-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": MODEL, "messages": [{"role": "user", "content": f"line {i}"}]},
        }
        for i in range(60)
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    uploaded = await client.post(
        "/v1/files", files={"file": ("in.jsonl", data)}, data={"purpose": "batch"}
    )
    assert uploaded.status_code == 200, uploaded.text
    body = {"input_file_id": uploaded.json()["id"], "endpoint": "/v1/chat/completions"}
    batch = (await client.post("/v1/batches", json=body)).json()

    async def some_done() -> bool:
        found = (await client.get(f"/v1/batches/{batch['id']}")).json()
        return bool(found["request_counts"]["completed"] >= 5)

    await eventually(some_done, what="the batch under way")
    troubled.freeze()
    await asyncio.sleep(10)
    troubled.thaw()

    async def ended() -> dict[str, object] | None:
        answer = await client.get(f"/v1/batches/{batch['id']}")
        found: dict[str, object] = answer.json() if answer.status_code == 200 else {}
        return found if found.get("status") in ("completed", "failed", "expired") else None

    done = await eventually(ended, timeout_s=120, what="the batch ended")
    assert done is not None
    print(f"\nredis frozen 10s during a batch: {json.dumps(done['request_counts'])}")
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 60, "completed": 60, "failed": 0}
