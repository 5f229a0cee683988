"""Reading and replaying the dead-letter topic (one partition, 30 days).

Each record carries `aib-dlq-reason` and `aib-dlq-kind`: `poison` (a record no handler could
take, with `aib-dlq-source` = topic:partition:offset), `exhausted` or `internal` (a request
that ended failed; its envelope is the value). Replaying a poison record writes it back to its
source topic, unchanged. Replaying a failed request submits it again as a new request (its
first one already has its terminal result, which stands): new id, attempts from zero,
asynchronous, `replay_of` naming the first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from aibroker.errors import InvalidRequest, NotFound
from aibroker.ids import new_id
from aibroker.kafka.acceptance import GIVE_UP_HEADER
from aibroker.kafka.clients import decode
from aibroker.kafka.log_reader import read_from
from aibroker.kafka.publisher import Publisher
from schemas.envelopes import Mode, Request
from topics.catalog import TopicNames

DLQ_HEADERS = ("aib-dlq-reason", "aib-dlq-kind", "aib-dlq-source", "aib-dlq-worker")


@dataclass(frozen=True)
class Letter:
    offset: int
    kind: str
    reason: str
    source: str | None
    request: Request | None
    """The envelope, when the value is one."""
    at: float

    @property
    def tenant(self) -> str | None:
        """The tenant of the request it holds (None for a poison record)."""
        return self.request.tenant if self.request else None

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "object": "dead_letter",
            "offset": self.offset,
            "kind": self.kind,
            "reason": self.reason,
            "source": self.source,
            "at": self.at,
        }
        if self.request is not None:
            doc["request"] = self.request.model_dump(
                include={"id", "tenant", "kind", "model", "mode", "attempt"}, mode="json"
            )
        return doc


def letter(record: ConsumerRecord[bytes, bytes]) -> Letter:
    headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
    try:
        request: Request | None = decode(Request, record.value)
    except (ValidationError, ValueError):
        request = None
    return Letter(
        offset=record.offset,
        kind=headers.get("aib-dlq-kind", "poison"),
        reason=headers.get("aib-dlq-reason", ""),
        source=headers.get("aib-dlq-source"),
        request=request,
        at=record.timestamp / 1000,
    )


async def read(
    consumer: AIOKafkaConsumer, names: TopicNames, start: int, limit: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """Up to `limit` dead letters from offset `start` (a started consumer without a group)."""
    return await read_from(consumer, names.dlq, start, limit)


@dataclass(frozen=True)
class Replayed:
    topic: str
    request: Request | None
    """The new request, when a failed one was submitted again."""


async def replay(
    record: ConsumerRecord[bytes, bytes], publisher: Publisher, names: TopicNames
) -> Replayed:
    """Send the dead letter on again; says where it went (and the new request)."""
    found = letter(record)
    if found.kind == "poison":
        if not found.source:
            raise InvalidRequest("This dead letter does not say where it came from.")
        topic = found.source.rsplit(":", 2)[0]
        headers = [
            (k, v) for k, v in record.headers or () if k not in DLQ_HEADERS and k != GIVE_UP_HEADER
        ]
        await publisher.forward_record(topic, record.value, record.key, headers)
        return Replayed(topic, None)
    if found.request is None:
        raise InvalidRequest("This dead letter holds no request envelope to submit again.")
    again = found.request.model_copy(
        update={
            "id": new_id("req"),
            "replay_of": found.request.id,
            "mode": Mode.ASYNC,
            "reply_to": None,
            "attempt": 1,
            "target_attempt": 1,
            "tried": [],
            "target": None,
            "idempotency_key": None,
            "created_at": time.time(),
        }
    )
    await publisher.submit(again)
    return Replayed(names.lane(again.priority), again)


async def one(
    consumer: AIOKafkaConsumer, names: TopicNames, offset: int
) -> ConsumerRecord[bytes, bytes]:
    records = await read(consumer, names, offset, 1)
    if not records or records[0].offset != offset:
        raise NotFound(f"No dead letter at offset {offset}.", param="offset")
    return records[0]
