"""`aibroker batch submit FILE.jsonl [--wait]`: upload a batch input file and start the batch
through the broker's API (with `aibroker.client.Broker`); with `--wait`, show its progress and
download the output and error files next to the input."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Never, TextIO

from tqdm import tqdm

from aibroker.client import BatchProgress, Broker


async def submit(broker: Broker, path: Path, endpoint: str, window: str, *, wait: bool) -> int:
    batch = await broker.upload_batch(path, endpoint=endpoint, window=window)
    print(f"batch {batch.id}: {batch.status.value}")
    for error in (batch.errors or {}).get("data") or []:
        line, code, message = error.get("line"), error.get("code"), error.get("message")
        print(f"  line {line}: {code}: {message}", file=sys.stderr)
    if not wait:
        return 0 if batch.status != "failed" else 1
    with ProgressReport(sys.stderr) as report:  # the progress on stderr, the outcome on stdout
        batch = await broker.follow_batch(batch.id, on_progress=report)
    print(progress_line(batch))
    for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
        if file_id:
            target = path.with_suffix(f".{kind}.jsonl")
            data = await broker.file_content(file_id)
            await asyncio.to_thread(target.write_bytes, data)
            print(f"  {kind}: {target}")
    return 0 if batch.status == "completed" else 1


def progress_line(batch: BatchProgress) -> str:
    """One plain line for a log: where the batch stands."""
    counts = batch.request_counts
    return (
        f"batch {batch.id}: {batch.status.value}, {batch.done}/{counts.total} done "
        f"({counts.failed} failed)"
    )


class ProgressReport:
    """Tells a person how a batch advances: a tqdm bar when `stream` is a terminal, else one
    plain line per change, so a log or a CI job gets no carriage returns and no repeats."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._bar: tqdm[Never] | None = None
        self._last: str | None = None

    def __enter__(self) -> ProgressReport:
        return self

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def __call__(self, batch: BatchProgress) -> None:
        line = progress_line(batch)
        if line == self._last:
            return  # a poll that saw no change
        self._last = line
        if self._stream.isatty():
            self._draw(batch)
        else:
            print(line, file=self._stream, flush=True)

    def _draw(self, batch: BatchProgress) -> None:
        counts = batch.request_counts
        bar = self._bar
        if bar is None:
            bar = self._bar = tqdm(desc=f"batch {batch.id}", unit="req", file=self._stream)
        bar.total = counts.total or None
        bar.n = batch.done
        bar.set_postfix_str(f"{counts.failed} failed, {batch.status.value}", refresh=False)
        bar.refresh()


def run(url: str, key: str, path: Path, endpoint: str, window: str, *, wait: bool) -> int:
    async def main() -> int:
        async with Broker(url, key) as broker:
            return await submit(broker, path, endpoint, window, wait=wait)

    return asyncio.run(main())
