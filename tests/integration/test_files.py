"""The file stores, one contract for both: the local directory, and S3 through moto's S3
server (over HTTP, as a MinIO or AWS endpoint would be reached)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aibroker.devstack.embedded import free_port
from aibroker.stores.files import FileStore, LocalFileStore, RedisFiles, S3FileStore
from aibroker.stores.redis import RedisClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FileStore]:
    if request.param == "local":
        yield LocalFileStore(tmp_path / "files")
        return
    import boto3

    endpoint = request.getfixturevalue("s3_endpoint")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    yield S3FileStore(bucket, "aibroker/files/", endpoint)


async def test_a_file_is_written_read_and_deleted(store: FileStore, redis: RedisClient) -> None:
    files = RedisFiles(redis, store)
    data = b'{"custom_id": "a"}\n' * 1000
    record = await files.put(f"file-{uuid.uuid4().hex}", "t1", "in.jsonl", "batch", data)
    assert record.bytes == len(data)
    assert await files.get(record.id, "t1") == record
    assert await files.get(record.id, "t2") is None  # another tenant's: not found
    assert await store.read(record.id) == data
    await files.delete(record)
    assert await files.get(record.id, "t1") is None
    with pytest.raises(Exception):  # noqa: B017, PT011 - each store raises its own not-found
        await store.read(record.id)
