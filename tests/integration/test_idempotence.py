"""The idempotent producer on Apache Kafka: a send whose acknowledgement is lost is retried, and
the broker writes it once; a producer the broker answers with a fatal sequence error is
replaced, and the next send goes through. A proxy that speaks just enough of the Kafka protocol
drops the broker's answer to a Produce request (a connection cut at the wrong moment), or
rewrites its error code."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from aibroker.devstack import apache_kafka
from aibroker.devstack.embedded import free_port
from aibroker.kafka.clients import make_producer
from aibroker.settings import KafkaSettings
from loadtest.history import read_topic
from tests.services import apache_cluster
from topics.apply import apply_topics
from topics.catalog import TopicSpec

pytestmark = [pytest.mark.integration, pytest.mark.apache]

PRODUCE = 0
"""The Kafka API key of Produce requests."""


class AckDropper:
    """Forwards Kafka frames both ways; the answer to the first Produce request after `arm()`
    never reaches the client (the connection is closed instead), or, armed with an error code,
    reaches it carrying that error."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.armed = False
        self.error_code: int | None = None
        self.dropped = 0
        self.produce_requests = 0

    def arm(self, error_code: int | None = None) -> None:
        self.armed, self.error_code = True, error_code

    async def relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        produces: set[int] = set()

        async def requests() -> None:
            while frame := await _frame(client_r):
                api_key, _, correlation = struct.unpack(">hhi", frame[4:12])
                if api_key == PRODUCE:
                    self.produce_requests += 1
                    if self.armed:
                        produces.add(correlation)
                up_w.write(frame)
                await up_w.drain()

        async def responses() -> None:
            while frame := await _frame(up_r):
                (correlation,) = struct.unpack(">i", frame[4:8])
                if correlation in produces and self.armed:
                    self.armed, self.dropped = False, self.dropped + 1
                    if self.error_code is None:
                        return  # the write is on the broker; its acknowledgement is lost
                    frame = _with_error(frame, self.error_code)
                client_w.write(frame)
                await client_w.drain()

        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            _done, pending = await asyncio.wait(
                [asyncio.create_task(requests()), asyncio.create_task(responses())],
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()
        client_w.close()
        up_w.close()


def _with_error(frame: bytes, code: int) -> bytes:
    """A Produce response (v1-v8: one topic, one partition) carrying `code` as its error."""
    (topic_len,) = struct.unpack(">h", frame[12:14])
    at = 14 + topic_len + 4 + 4  # partitions array length, then the partition index
    return frame[:at] + struct.pack(">h", code) + frame[at + 2 :]


async def _frame(reader: asyncio.StreamReader) -> bytes:
    try:
        head = await reader.readexactly(4)
    except asyncio.IncompleteReadError:
        return b""
    (size,) = struct.unpack(">i", head)
    return head + await reader.readexactly(size)


@pytest.fixture
async def proxied(
    tmp_path: Path, own_kafka: Callable[[apache_kafka.Cluster], apache_kafka.Running]
) -> AsyncIterator[tuple[AckDropper, KafkaSettings, KafkaSettings]]:
    """A broker with a listener reached only through the dropper: (dropper, settings through
    it, settings of the plain listener)."""
    proxy_port, inner_port = free_port(), free_port()
    plan = apache_cluster(tmp_path)
    node = plan.nodes[0]
    listener = apache_kafka.Listener("PROXIED", inner_port, "PLAINTEXT", proxy_port)
    cluster = own_kafka(
        apache_kafka.Cluster(
            plan.libs,
            plan.data_dir,
            (apache_kafka.Node(1, node.port, node.controller_port, (listener,)),),
        )
    )
    dropper = AckDropper(inner_port)
    server = await asyncio.start_server(dropper.relay, "127.0.0.1", proxy_port)
    direct = KafkaSettings(bootstrap=cluster.bootstrap, engine="kafka")
    through = KafkaSettings(bootstrap=f"127.0.0.1:{proxy_port}", engine="kafka")
    try:
        yield dropper, through, direct
    finally:
        server.close()


async def _send_once_with_lost_ack(
    dropper: AckDropper, settings: KafkaSettings, direct: KafkaSettings, topic: str
) -> int:
    """Copies of one record on the topic after its first acknowledgement was lost."""
    await apply_topics(direct, [TopicSpec(topic, 1, 3_600_000, "k", (), ())])
    producer = make_producer(settings, retry_backoff_ms=50)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm-up")  # metadata and producer id first
        requests, dropped = dropper.produce_requests, dropper.dropped
        dropper.arm()
        await producer.send_and_wait(topic, b"exactly-once", key=b"k")
        assert dropper.dropped == dropped + 1, "the acknowledgement was not dropped"
        assert dropper.produce_requests - requests >= 2, "the producer did not retry"
    finally:
        await producer.stop()
    records = await read_topic(direct, topic)
    return sum(1 for r in records if r.value == b"exactly-once")


async def test_a_retried_send_is_written_once(
    proxied: tuple[AckDropper, KafkaSettings, KafkaSettings],
) -> None:
    dropper, through, direct = proxied
    assert through.producer_idempotent  # the default on Kafka
    assert await _send_once_with_lost_ack(dropper, through, direct, "idem.on") == 1
    # The same fault without idempotence writes the record twice: the check above can fail.
    plain = through.model_copy(update={"idempotent": False})
    assert await _send_once_with_lost_ack(dropper, plain, direct, "idem.off") == 2


OUT_OF_ORDER_SEQUENCE_NUMBER = 45


async def test_a_producer_the_broker_fails_for_good_is_replaced(
    proxied: tuple[AckDropper, KafkaSettings, KafkaSettings],
) -> None:
    """A fatal sequence error fails the send that met it; the producer is replaced (a new
    producer id) and every later send goes through, without restarting anything."""
    dropper, through, direct = proxied
    topic = "idem.fatal"
    await apply_topics(direct, [TopicSpec(topic, 1, 3_600_000, "k", (), ())])
    producer = make_producer(through, retry_backoff_ms=50)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"before")
        dropper.arm(OUT_OF_ORDER_SEQUENCE_NUMBER)
        with pytest.raises(OutOfOrderSequenceNumber):
            await producer.send_and_wait(topic, b"met the error")
        assert producer.renewals == 1
        for i in range(3):
            await producer.send_and_wait(topic, f"after {i}".encode())
    finally:
        await producer.stop()
    values = [r.value for r in await read_topic(direct, topic)]
    assert values[-3:] == [b"after 0", b"after 1", b"after 2"]
