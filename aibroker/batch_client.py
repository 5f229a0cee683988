"""`aibroker batch submit FILE.jsonl [--wait]`: upload a batch input file and start the batch
through the broker's API (with `aibroker.client.Broker`); with `--wait`, show its progress and
download the output and error files next to the input."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aibroker.client import BatchProgress, Broker


async def submit(broker: Broker, path: Path, endpoint: str, window: str, *, wait: bool) -> int:
    batch = await broker.upload_batch(path, endpoint=endpoint, window=window)
    print(f"batch {batch.id}: {batch.status.value}")
    for error in (batch.errors or {}).get("data") or []:
        line, code, message = error.get("line"), error.get("code"), error.get("message")
        print(f"  line {line}: {code}: {message}", file=sys.stderr)
    if not wait:
        return 0 if batch.status != "failed" else 1
    batch = await broker.follow_batch(batch.id, on_progress=_progress)
    print(f"\nbatch {batch.id}: {batch.status.value}")
    for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
        if file_id:
            target = path.with_suffix(f".{kind}.jsonl")
            data = await broker.file_content(file_id)
            await asyncio.to_thread(target.write_bytes, data)
            print(f"  {kind}: {target}")
    return 0 if batch.status == "completed" else 1


def _progress(batch: BatchProgress) -> None:
    counts = batch.request_counts
    if not counts.total:
        return
    done = batch.done
    filled = int(30 * done / counts.total)
    bar = "#" * filled + "." * (30 - filled)
    print(
        f"\r  [{bar}] {done}/{counts.total} ({counts.failed} failed) {batch.status.value}",
        end="",
        flush=True,
    )


def run(url: str, key: str, path: Path, endpoint: str, window: str, *, wait: bool) -> int:
    async def main() -> int:
        async with Broker(url, key) as broker:
            return await submit(broker, path, endpoint, window, wait=wait)

    return asyncio.run(main())
