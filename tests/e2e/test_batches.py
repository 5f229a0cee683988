"""Batch jobs through the official `openai` SDK: files and batches round-trip, a bad file
fails with its line numbers, cancel keeps what finished, and a batch runner killed mid-batch
still yields each custom_id exactly once."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from loadtest import mock_embeddings
from loadtest.stack import Stack
from tests.e2e.conftest import Receiver, running_stack
from tests.services import KafkaService, RedisService
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        "AIBROKER_BATCH_EXPAND_PER_S": "200",
        "AIBROKER_WEBHOOKS_ALLOW_HTTP": "true",
        "AIBROKER_WEBHOOKS_ALLOW": '["127.0.0.0/8"]',
    }
    with running_stack(kafka, redis_svc, tmp_path_factory.mktemp("batches"), extra_env=env) as s:
        yield s


def jsonl(lines: list[dict[str, Any]]) -> io.BytesIO:
    return io.BytesIO(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")


def chat_lines(n: int, model: str = "mock/echo") -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"line-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"n{i}"}]},
        }
        for i in range(n)
    ]


async def ended(sdk: openai.AsyncOpenAI, batch_id: str, timeout_s: float = 60) -> Any:
    async def done() -> Any:
        batch = await sdk.batches.retrieve(batch_id)
        return batch if batch.status in {"completed", "failed", "expired", "cancelled"} else None

    return await eventually(
        done, what=f"batch {batch_id} ended", timeout_s=timeout_s, interval_s=0.3
    )


async def start_batch(sdk: openai.AsyncOpenAI, lines: io.BytesIO) -> Any:
    """Upload a chat batch file and start its batch (24 h window)."""
    uploaded = await sdk.files.create(file=("in.jsonl", lines), purpose="batch")
    return await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )


async def progressed(sdk: openai.AsyncOpenAI, batch_id: str, completed: int) -> None:
    """Wait until at least `completed` lines of the batch are done."""

    async def enough() -> bool:
        counts = (await sdk.batches.retrieve(batch_id)).request_counts
        return counts is not None and counts.completed >= completed

    await eventually(enough, what=f"{completed} lines of {batch_id} done", timeout_s=30)


async def output(sdk: openai.AsyncOpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    content = await sdk.files.content(file_id)
    return [orjson.loads(line) for line in content.read().splitlines() if line.strip()]


async def test_the_sdk_round_trips_files_and_batches(sdk: openai.AsyncOpenAI) -> None:
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(chat_lines(20))), purpose="batch")
    assert (await sdk.files.retrieve(uploaded.id)).bytes == uploaded.bytes
    batch = await sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"job": "nightly"},
    )
    assert batch.status == "in_progress"
    done = await ended(sdk, batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (20, 20)
    assert done.metadata == {"job": "nightly"}
    lines = await output(sdk, done.output_file_id)
    assert sorted(line["custom_id"] for line in lines) == sorted(f"line-{i}" for i in range(20))
    first = next(line for line in lines if line["custom_id"] == "line-3")
    assert first["response"]["status_code"] == 200
    assert first["response"]["body"]["choices"][0]["message"]["content"] == "echo: n3"
    listed = await sdk.batches.list(limit=5)
    assert batch.id in [b.id for b in listed.data]
    deleted = await sdk.files.delete(uploaded.id)
    assert deleted.deleted


async def test_failed_lines_go_to_the_error_file(sdk: openai.AsyncOpenAI) -> None:
    lines = chat_lines(3) + chat_lines(1, "mock/fail-400")
    lines[-1]["custom_id"] = "bad"
    batch = await start_batch(sdk, jsonl(lines))
    done = await ended(sdk, batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 1)
    [error] = await output(sdk, done.error_file_id)
    assert error["custom_id"] == "bad"
    assert error["response"]["status_code"] == 400


async def test_a_bad_file_fails_naming_its_lines_and_enqueues_nothing(
    sdk: openai.AsyncOpenAI,
) -> None:
    lines = chat_lines(4)
    lines[1]["custom_id"] = "line-0"  # a duplicate
    lines[2]["url"] = "/v1/embeddings"
    raw = b"\n".join(orjson.dumps(line) for line in lines) + b"\n{not json\n"
    batch = await start_batch(sdk, io.BytesIO(raw))
    assert batch.status == "failed"
    assert batch.errors is not None
    found = {(e.line, e.code) for e in batch.errors.data or []}
    assert found == {
        (2, "duplicate_custom_id"),
        (3, "mismatched_endpoint"),
        (5, "invalid_json_line"),
    }
    assert batch.output_file_id is None


async def test_cancel_keeps_what_finished(sdk: openai.AsyncOpenAI) -> None:
    lines = chat_lines(300, "mock/latency-200")
    batch = await start_batch(sdk, jsonl(lines))
    await progressed(sdk, batch.id, 5)
    cancelling = await sdk.batches.cancel(batch.id)
    assert cancelling.status == "cancelling"
    done = await ended(sdk, batch.id)
    assert done.status == "cancelled"
    assert done.request_counts is not None
    assert done.request_counts.completed >= 5
    assert done.request_counts.completed + done.request_counts.failed == 300
    ok = await output(sdk, done.output_file_id)
    errors = await output(sdk, done.error_file_id)
    assert len(ok) == done.request_counts.completed
    assert {e["error"]["code"] for e in errors if e["error"]} <= {"batch_cancelled"}
    assert len({line["custom_id"] for line in ok + errors}) == 300


async def test_a_killed_runner_still_yields_each_custom_id_once(
    stack: Stack, sdk: openai.AsyncOpenAI
) -> None:
    batch = await start_batch(sdk, jsonl(chat_lines(600)))
    await progressed(sdk, batch.id, 50)
    stack.kill("batches", signal.SIGKILL)  # mid-expansion and mid-aggregation
    stack.start_service("batches")
    done = await ended(sdk, batch.id, timeout_s=90)
    assert done.status == "completed"
    lines = await output(sdk, done.output_file_id) + await output(sdk, done.error_file_id)
    counts = Counter(line["custom_id"] for line in lines)
    assert len(counts) == 600
    assert set(counts.values()) == {1}


async def test_an_ended_batch_is_announced_to_the_tenants_endpoints(
    stack: Stack, sdk: openai.AsyncOpenAI, receiver: Receiver
) -> None:
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=f"{stack.url}/admin/v1", headers=admin) as client:
        hooks = {"webhooks": [{"url": receiver.url, "events": ["batch.completed"]}]}
        made = await client.put("/tenants/tenant-a", json=hooks)
        assert made.status_code == 200
        secret = made.json()["webhook_secrets"][0]
        try:
            uploaded = await sdk.files.create(
                file=("in.jsonl", jsonl(chat_lines(5))), purpose="batch"
            )
            batch = await sdk.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            await eventually(lambda: _got(receiver), what="the batch.completed webhook")
        finally:  # the tenant stays (deleting it would revoke the suite's key): no webhooks
            await client.put("/tenants/tenant-a", json={})
    headers, body = receiver.got[0]
    payload = Verifier(secret).verify(body, headers)
    assert payload["type"] == "batch.completed"
    assert payload["data"]["id"] == batch.id
    assert payload["data"]["request_counts"]["completed"] == 5


async def _got(receiver: Receiver) -> bool:
    return bool(receiver.got)


def test_the_cli_submits_waits_and_downloads(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "job.jsonl"
    path.write_bytes(jsonl(chat_lines(12)).getvalue())
    done = subprocess.run(
        [
            *(sys.executable, "-m", "aibroker", "batch", "submit", str(path), "--wait"),
            *("--url", stack.url, "--key", stack.api_key),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "12/12" in done.stdout
    lines = (tmp_path / "job.output.jsonl").read_bytes().splitlines()
    assert len(lines) == 12


async def test_a_batch_expires_at_its_window_keeping_what_finished(
    sdk: openai.AsyncOpenAI,
) -> None:
    # 40 lines that cannot end in time, fewer than the pool's slots: the 2 others run at once.
    lines = chat_lines(2) + chat_lines(42, "mock/latency-8000")[2:]
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="6s",  # type: ignore[arg-type]  # the broker takes any window
    )
    done = await ended(sdk, batch.id, timeout_s=30)
    assert done.status == "expired"
    assert done.expired_at is not None
    assert done.request_counts is not None
    errors = await output(sdk, done.error_file_id)
    assert done.request_counts.completed == 2
    assert done.request_counts.failed == 40
    assert errors
    assert {e["error"]["code"] for e in errors} == {"batch_expired"}


async def test_embedding_lines_go_to_a_providers_embedding_model(sdk: openai.AsyncOpenAI) -> None:
    """A batch of `/v1/embeddings` lines for an OpenAI-compatible provider's model."""
    lines = [
        {
            "custom_id": f"vec-{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "mock/text-embedding-3-small", "input": f"text {i}", "dimensions": 8},
        }
        for i in range(6)
    ]
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
    )
    done = await ended(sdk, batch.id)
    assert done.status == "completed"
    got = {
        line["custom_id"]: line["response"]["body"]
        for line in await output(sdk, done.output_file_id)
    }
    assert sorted(got) == [f"vec-{i}" for i in range(6)]
    assert got["vec-2"]["data"][0]["embedding"] == pytest.approx(
        mock_embeddings.vector("text 2", 8), abs=1e-6
    )
