"""Redis that hangs, under mixed traffic (sync, async, a batch), judged by the history checker:
frozen (SIGSTOP) for 10 s and for 60 s, answering every command 500 ms late, and frozen while
a batch runs. Async submissions keep being accepted throughout, nothing accepted is lost and
nothing stays queued; what clients saw is printed (`-s`) for docs/operations/failure-drills.md."""

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


async def under_fault(
    stack: Stack,
    client: httpx.AsyncClient,
    name: str,
    begin: Callable[[], None],
    end: Callable[[], None],
    *,
    seconds: float,
    rate: float,
) -> dict[str, object]:
    """Mixed traffic with the fault held `seconds` once work is in flight, the history
    checker's verdict, and what clients saw during the fault (printed)."""
    history = History(model=MODEL)
    window = Window(0, 0)

    async def fault() -> int:
        nonlocal window
        started = time.time()
        begin()
        await asyncio.sleep(seconds)
        end()
        window = Window(started, time.time())
        return 0

    await with_fault(stack, history, client, fault, n=int(rate * (seconds + 6)), rate=rate)
    seen = during(history, window) | {
        "recovered_after_s": await recovery_s(client, MODEL, window.end)
    }
    print(f"\n{name}: {json.dumps(seen)}")
    assert seen["async_accepted"], f"no async submission was accepted ({name})"
    assert seen["async_refused"] == 0, f"async submissions were refused ({name})"
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
    name = f"redis frozen {seconds}s"
    client = client_of(stack)
    await under_fault(
        stack, client, name, troubled.freeze, troubled.thaw, seconds=seconds, rate=rate
    )


async def test_redis_answering_500ms_late(
    stack: Stack,
    troubled: faults.TroubledRedis,
    client_of: Callable[[Stack], httpx.AsyncClient],
) -> None:
    client = client_of(stack)
    name = "redis 500 ms late"
    await under_fault(stack, client, name, troubled.slow, troubled.fast, seconds=10, rate=20.0)


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
