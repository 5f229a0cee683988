"""The local file store writes whole files, and two writers of one id never collide: the
aggregator and the sweeper may both end one batch and write its output file at once."""

import asyncio
from pathlib import Path

import pytest

from aibroker.stores.files import LocalFileStore

pytestmark = pytest.mark.unit


async def test_concurrent_writers_of_one_file_each_land_a_whole_file(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    versions = [f"line {n}\n".encode() * 1000 for n in range(16)]
    await asyncio.gather(*(store.write("file-out", data) for data in versions))
    assert await store.read("file-out") in versions
    left = await asyncio.to_thread(lambda: [p.name for p in tmp_path.iterdir()])
    assert left == ["file-out"]  # no partial file left
