"""The collections and their documents, as the compacted `rag.collections` topic holds them
(one partition, kept for ever), read into this worker's memory. The log is the durable copy:
a lost Redis loses none of it, and a worker that starts reads it whole.

| key | value |
|---|---|
| `collection:<id>` | a `CollectionDef`, or `{"v": 1, "deleted": true}` |
| `document:<collection id>:<document id>` | a `DocumentRecord`, or the deletion |

A deletion is a record, not a Kafka tombstone, for the control plane's reason: compaction
drops tombstones after `delete.retention.ms`, and a reader replaying from an older copy would
miss it. Every write goes to the log first, then this worker reads up to the log's end: what it
serves is the log, in the log's order, whoever wrote it (several workers against a server).
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from pydantic import ValidationError

from aibroker.kafka.producer import Producer
from schemas.rag import CollectionDef, DocumentRecord

log = logging.getLogger(__name__)

DELETED = b'{"v": 1, "deleted": true}'


class Registry:
    def __init__(self, consumer: AIOKafkaConsumer, producer: Producer, topic: str) -> None:
        self._consumer = consumer
        self._producer = producer
        self._topic = topic
        self._tp = TopicPartition(topic, 0)
        self._lock = asyncio.Lock()
        self._collections: dict[str, CollectionDef] = {}
        self._documents: dict[str, dict[str, DocumentRecord]] = {}

    async def start(self) -> None:
        """Read the whole log (the consumer is started, and in no group)."""
        self._consumer.assign([self._tp])
        self._consumer.seek(self._tp, 0)
        await self.catch_up()

    async def catch_up(self) -> None:
        """Apply every record up to the log's end as it is now."""
        async with self._lock:
            await self._read_to_end()

    async def _read_to_end(self) -> None:
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
        while await self._consumer.position(self._tp) < end:
            batch = await self._consumer.getmany(self._tp, timeout_ms=1000)
            for record in batch.get(self._tp, []):
                self._apply(record.key or b"", record.value)

    async def _write(self, key: str, value: bytes) -> None:
        """To the log (acks=all), then read up to it: the view has the write when this returns."""
        async with self._lock:
            await self._producer.send_and_wait(self._topic, value, key.encode(), partition=0)
            await self._read_to_end()

    def _apply(self, key: bytes, value: bytes | None) -> None:
        kind, _, name = key.decode(errors="replace").partition(":")
        deleted = value is None or json.loads(value).get("deleted") is True
        try:
            if kind == "collection":
                if deleted:
                    self._collections.pop(name, None)
                    self._documents.pop(name, None)
                else:
                    assert value is not None
                    self._collections[name] = CollectionDef.model_validate_json(value)
            elif kind == "document":
                collection, _, document_id = name.partition(":")
                docs = self._documents.setdefault(collection, {})
                if deleted:
                    docs.pop(document_id, None)
                else:
                    assert value is not None
                    docs[document_id] = DocumentRecord.model_validate_json(value)
            else:
                log.warning("rag.collections record %r not for this release; skipped", key)
        except ValidationError as exc:
            log.warning("rag.collections record %r unreadable (%s); skipped", key, exc.errors()[:1])

    def collection(self, tenant: str, collection_id: str) -> CollectionDef | None:
        """The tenant's collection; None for another tenant's, as for a missing one."""
        found = self._collections.get(collection_id)
        return found if found is not None and found.tenant == tenant else None

    def collections(self, tenant: str) -> list[CollectionDef]:
        """The tenant's collections, newest first."""
        mine = [c for c in self._collections.values() if c.tenant == tenant]
        return sorted(mine, key=lambda c: c.created_at, reverse=True)

    def documents(self, collection_id: str) -> list[DocumentRecord]:
        """A collection's documents, newest first."""
        docs = self._documents.get(collection_id, {}).values()
        return sorted(docs, key=lambda d: d.created_at, reverse=True)

    def document(self, collection_id: str, document_id: str) -> DocumentRecord | None:
        return self._documents.get(collection_id, {}).get(document_id)

    async def put_collection(self, collection: CollectionDef) -> None:
        await self._write(f"collection:{collection.id}", collection.model_dump_json().encode())

    async def drop_collection(self, collection: CollectionDef) -> None:
        """The collection's documents, then the collection itself."""
        for doc in self.documents(collection.id):
            await self.drop_document(doc)
        await self._write(f"collection:{collection.id}", DELETED)

    async def put_document(self, record: DocumentRecord) -> None:
        key = f"document:{record.collection}:{record.document_id}"
        await self._write(key, record.model_dump_json().encode())

    async def drop_document(self, record: DocumentRecord) -> None:
        await self._write(f"document:{record.collection}:{record.document_id}", DELETED)
