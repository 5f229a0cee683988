"""`aibroker batches`: the batch runner. The expander feeds a batch's lines into the batch lane
at a controlled rate (resuming where it stopped after a crash: line request ids are
deterministic, so a line fed twice is one request); the aggregator keeps one output line per
custom_id from `results` and writes the output and error files when every line is in; the
sweeper ends cancelled and expired batches, keeping what finished."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Literal

import orjson
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis

from aibroker.kafka.clients import decode, encode, running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.runtime.service import WorkerSpec, run_service
from aibroker.settings import BatchSettings, Settings
from aibroker.stores.batches import ENDED, BatchStore
from aibroker.stores.files import Files, file_store
from aibroker.stores.redis import connect
from aibroker.stores.results import cancel_key
from aibroker.stores.tenants import TenantStore
from consumers.batch_io import Line, line_request_id, output_line, read_input, unrun_line
from consumers.webhooks import announce_batch
from schemas.bodies import BODIES
from schemas.envelopes import Mode, Request, Result
from topics.catalog import TopicNames

log = logging.getLogger(__name__)

CHUNK = 100
"""Lines fed between two checkpoints (and two looks at the batch's status)."""


class BatchRunner:
    def __init__(
        self,
        publisher: Publisher,
        redis: Redis,
        batches: BatchStore,
        files: Files,
        settings: BatchSettings,
        ttl_s: int,
    ) -> None:
        self.tenants = TenantStore(redis)
        self.publisher = publisher
        self.redis = redis
        self.batches = batches
        self.files = files
        self.settings = settings
        self.ttl_s = ttl_s

    async def on_event(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """A batch to run (from `POST /v1/batches`, or again after a crash)."""
        batch_id = orjson.loads(record.value)["batch_id"]
        batch = await self.batches.get(batch_id)
        if batch is None or batch["status"] != "in_progress":
            return
        lines = await self._lines(batch)
        start = await self.batches.expanded(batch_id)
        started = time.monotonic()
        for first in range(start, len(lines), CHUNK):
            now = await self.batches.get(batch_id)
            if now is None or now["status"] != "in_progress":
                return  # cancelled or expired meanwhile: the sweeper ends it
            await self._feed(batch, lines[first : first + CHUNK])
            await self.batches.mark_expanded(batch_id, first + CHUNK)
            ahead = (first + CHUNK - start) / self.settings.expand_per_s
            await asyncio.sleep(max(0.0, ahead - (time.monotonic() - started)))

    async def _lines(self, batch: dict[str, Any]) -> list[Line]:
        data = await self.files.store.read(batch["input_file_id"])
        lines = read_input(data, batch["endpoint"], self.settings.max_lines)
        return [line for line in lines if isinstance(line, Line)]  # checked at creation

    async def _feed(self, batch: dict[str, Any], lines: list[Line]) -> None:
        kind, _ = BODIES[batch["endpoint"]]
        sends = []
        for line in lines:
            request = Request(
                id=line_request_id(batch["id"], line.custom_id),
                tenant=batch["tenant"],
                key_id=batch["key_id"],
                kind=kind,
                model=line.body.model,
                body=line.body.model_dump(exclude_unset=True),
                mode=Mode.BATCH,
                priority="batch",
                deadline=float(batch["expires_at"]),
                batch_id=batch["id"],
                custom_id=line.custom_id,
                created_at=time.time(),
            )
            topic = self.publisher.names.requests_batch
            sends.append(
                await self.publisher.producer.send(topic, encode(request), key=request.id.encode())
            )
        await asyncio.gather(*sends)

    async def on_result(self, record: ConsumerRecord[bytes, bytes]) -> None:
        result = decode(Result, record.value)
        if result.batch_id is None or result.custom_id is None:
            return
        ok, line = output_line(result)
        completed, failed, total = await self.batches.record(
            result.batch_id, result.custom_id, ok, line
        )
        if completed + failed >= total:
            batch = await self.batches.get(result.batch_id)
            late = batch is not None and time.time() >= batch["expires_at"]
            await self.finalize(result.batch_id, "expired" if late else "completed")

    async def finalize(
        self, batch_id: str, end: Literal["completed", "cancelled", "expired"]
    ) -> None:
        """Write the output and error files, then end the batch (again after a crash: the
        files have fixed ids, the status moves once)."""
        batch = await self.batches.get(batch_id)
        if batch is None or batch["status"] in ENDED:
            return
        now = int(time.time())
        if end == "completed":
            await self.batches.transition(batch_id, "finalizing", now, from_=("in_progress",))
        ok, failed = await self.batches.lines(batch_id)
        outputs: dict[str, Any] = {}
        for name, rows in (("output_file_id", ok), ("error_file_id", failed)):
            if rows:
                file_id = f"file-{batch_id.removeprefix('batch_')}-{name.split('_')[0]}"
                data = b"\n".join(rows) + b"\n"
                await self.files.put(
                    file_id,
                    batch["tenant"],
                    f"{batch_id}_{name.split('_')[0]}.jsonl",
                    "batch_output",
                    data,
                )
                outputs[name] = file_id
        await self.batches.update(batch_id, **outputs)
        allowed = (
            ("finalizing",) if end == "completed" else ("cancelling", "in_progress", "finalizing")
        )
        if await self.batches.transition(batch_id, end, int(time.time()), from_=allowed):
            log.info("batch %s %s (%d ok, %d failed)", batch_id, end, len(ok), len(failed))
            ended = await self.batches.get(batch_id)
            assert ended is not None
            await announce_batch(self.publisher, self.tenants, ended)

    async def sweep(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for batch_id in await self.batches.active():
                try:
                    await self._sweep_one(batch_id)
                except Exception:
                    log.exception("sweeping batch %s failed", batch_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.sweep_s)

    async def _sweep_one(self, batch_id: str) -> None:
        batch = await self.batches.get(batch_id)
        if batch is None:
            return
        why: Literal["cancelled", "expired"]
        if batch["status"] == "cancelling":
            why = "cancelled"
        elif batch["status"] == "in_progress" and time.time() >= batch["expires_at"]:
            why = "expired"
        else:
            return
        await self.close_lines(batch, why)
        await self.finalize(batch_id, why)

    async def close_lines(
        self, batch: dict[str, Any], why: Literal["cancelled", "expired"]
    ) -> None:
        """Every line without an output gets its error line now; the ones running are told
        to stop (their late results find their line taken)."""
        done = await self.batches.recorded(batch["id"])
        open_ids = [
            line.custom_id for line in await self._lines(batch) if line.custom_id not in done
        ]
        async with self.redis.pipeline(transaction=False) as pipe:
            for custom_id in open_ids:
                pipe.set(cancel_key(line_request_id(batch["id"], custom_id)), "1", ex=self.ttl_s)
            await pipe.execute()
        for custom_id in open_ids:
            await self.batches.record(
                batch["id"], custom_id, False, unrun_line(batch["id"], custom_id, why)
            )


async def run(settings: Settings, stop: asyncio.Event) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    async with connect(settings.redis) as redis, running_producer(settings.kafka) as producer:
        runner = BatchRunner(
            Publisher(producer, names),
            redis,
            BatchStore(redis, settings.redis.ttl_s),
            Files(redis, file_store(settings.batch)),
            settings.batch,
            settings.redis.ttl_s,
        )
        specs = [
            WorkerSpec(
                "batches.expander", [names.batches], "aib-batches-expander", runner.on_event, 16
            ),
            WorkerSpec("batches.aggregator", [names.results], "aib-batches", runner.on_result, 256),
        ]
        await run_service(settings, producer, specs, stop, runner.sweep(stop))
