"""Files (`/v1/files`): bytes behind a small store interface, their records in Redis
(`aib:file:{id}`, `aib:tenant:{tenant}:files`). A local directory by default (a shared volume
when there are several machines), an S3-compatible bucket as an option."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from aibroker.settings import BatchSettings
from aibroker.stores.redis import RedisClient, write_together


class FileRecord(BaseModel):
    """An OpenAI file object, plus its owner."""

    id: str
    object: str = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str = "processed"
    tenant: str

    def document(self) -> dict[str, Any]:
        return self.model_dump(exclude={"tenant"})


class FileStore(Protocol):
    async def write(self, file_id: str, data: bytes) -> None: ...
    async def read(self, file_id: str) -> bytes: ...
    async def delete(self, file_id: str) -> None: ...


class LocalFileStore:
    """One file per id in a directory (written whole, then renamed: never half a file, and
    concurrent writers of one id never collide)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    async def write(self, file_id: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, file_id, data)

    def _write(self, file_id: str, data: bytes) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        # A name of this write's own: two writers of one file (the aggregator and the sweeper
        # ending one batch) each rename a whole file, and neither finds the other's gone.
        partial = self._root / f".{file_id}.{uuid.uuid4().hex}.part"
        partial.write_bytes(data)
        partial.replace(self._root / file_id)

    async def read(self, file_id: str) -> bytes:
        return await asyncio.to_thread((self._root / file_id).read_bytes)

    async def delete(self, file_id: str) -> None:
        await asyncio.to_thread((self._root / file_id).unlink, True)


class S3FileStore:
    """Objects in an S3 (or S3-compatible) bucket, through boto3 in worker threads."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None) -> None:
        import boto3  # the [s3] extra

        self._s3 = boto3.client("s3", endpoint_url=endpoint_url)
        self._bucket = bucket
        self._prefix = prefix

    async def write(self, file_id: str, data: bytes) -> None:
        await asyncio.to_thread(
            self._s3.put_object, Bucket=self._bucket, Key=self._prefix + file_id, Body=data
        )

    async def read(self, file_id: str) -> bytes:
        def get() -> bytes:
            found = self._s3.get_object(Bucket=self._bucket, Key=self._prefix + file_id)
            data: bytes = found["Body"].read()
            return data

        return await asyncio.to_thread(get)

    async def delete(self, file_id: str) -> None:
        await asyncio.to_thread(
            self._s3.delete_object, Bucket=self._bucket, Key=self._prefix + file_id
        )


def file_store(settings: BatchSettings) -> FileStore:
    """S3 when a bucket is set, else the local directory."""
    if settings.s3_bucket:
        return S3FileStore(settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint_url)
    return LocalFileStore(settings.files_dir)


class Files(Protocol):
    """File records (bytes in a FileStore), by id and tenant."""

    store: FileStore

    async def put(
        self, file_id: str, tenant: str, filename: str, purpose: str, data: bytes
    ) -> FileRecord: ...

    async def get(self, file_id: str, tenant: str) -> FileRecord | None:
        """The tenant's file; None for another tenant's (as for a missing one)."""
        ...

    async def delete(self, record: FileRecord) -> None: ...


class RedisFiles:
    """Records in Redis, bytes in the store."""

    def __init__(self, redis: RedisClient, store: FileStore) -> None:
        self._redis = redis
        self.store = store

    async def put(
        self, file_id: str, tenant: str, filename: str, purpose: str, data: bytes
    ) -> FileRecord:
        await self.store.write(file_id, data)
        record = FileRecord(
            id=file_id,
            bytes=len(data),
            created_at=int(time.time()),
            filename=filename,
            purpose=purpose,
            tenant=tenant,
        )
        async with write_together(self._redis) as tx:
            tx.set(f"aib:file:{file_id}", record.model_dump_json())
            tx.sadd(f"aib:tenant:{tenant}:files", file_id)
            await tx.execute()
        return record

    async def get(self, file_id: str, tenant: str) -> FileRecord | None:
        """The tenant's file; None for another tenant's (as for a missing one)."""
        found = await self._redis.get(f"aib:file:{file_id}")
        record = FileRecord.model_validate_json(found) if found else None
        return record if record is not None and record.tenant == tenant else None

    async def delete(self, record: FileRecord) -> None:
        async with write_together(self._redis) as tx:
            tx.delete(f"aib:file:{record.id}")
            tx.srem(f"aib:tenant:{record.tenant}:files", record.id)
            await tx.execute()
        await self.store.delete(record.id)
