"""`aibroker batch submit FILE.jsonl [--wait]`: upload a batch input file and start the batch
through the broker's OpenAI-compatible API (with the official SDK); with `--wait`, show its
progress and download the output and error files next to the input."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import openai

from schemas.batches import BatchStatus


async def submit(
    client: openai.AsyncOpenAI, path: Path, endpoint: str, window: str, *, wait: bool
) -> int:
    with path.open("rb") as fh:
        uploaded = await client.files.create(file=(path.name, fh), purpose="batch")
    batch = await client.batches.create(
        input_file_id=uploaded.id,
        endpoint=endpoint,  # type: ignore[arg-type]  # the broker also takes /v1/ocr
        completion_window=window,  # type: ignore[arg-type]
    )
    print(f"batch {batch.id}: {batch.status}")
    if batch.errors and batch.errors.data:
        for error in batch.errors.data:
            print(f"  line {error.line}: {error.code}: {error.message}", file=sys.stderr)
    if not wait:
        return 0 if batch.status != "failed" else 1
    while not BatchStatus(batch.status).ended:
        await asyncio.sleep(1.0)
        batch = await client.batches.retrieve(batch.id)
        _progress(batch)
    print(f"\nbatch {batch.id}: {batch.status}")
    for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
        if file_id:
            target = path.with_suffix(f".{kind}.jsonl")
            target.write_bytes((await client.files.content(file_id)).read())
            print(f"  {kind}: {target}")
    return 0 if batch.status == "completed" else 1


def _progress(batch: openai.types.Batch) -> None:
    counts = batch.request_counts
    if counts is None or not counts.total:
        return
    done = counts.completed + counts.failed
    filled = int(30 * done / counts.total)
    bar = "#" * filled + "." * (30 - filled)
    print(
        f"\r  [{bar}] {done}/{counts.total} ({counts.failed} failed) {batch.status}",
        end="",
        flush=True,
    )


def run(url: str, key: str, path: Path, endpoint: str, window: str, *, wait: bool) -> int:
    async def main() -> int:
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key) as client:
            return await submit(client, path, endpoint, window, wait=wait)

    return asyncio.run(main())
