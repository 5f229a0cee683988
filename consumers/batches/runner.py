"""`aibroker batches`: the batch runner. The expander feeds a batch's lines into the batch lane
at a controlled rate (resuming where it stopped after a crash: line request ids are
deterministic, so a line fed twice is one request); the aggregator keeps one output line per
custom_id from `results` and writes the output and error files when every line is in, and stops
a batch whose caller's bounds (`aibroker.rules.batch_bounds`) it reached; the sweeper ends
cancelled, stopped and expired batches, keeping what finished."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka.structs import ConsumerRecord

from aibroker.errors import InvalidRequest, NotFound
from aibroker.kafka.clients import decode, running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.rules.batch_bounds import (
    NONE,
    BadBound,
    Bounds,
    Tally,
    parse_bounds,
    stop_reason,
    stopped_error,
    with_defaults,
)
from aibroker.runtime.service import WorkerSpec, run_service
from aibroker.settings import BatchSettings, Settings
from aibroker.stores.batches import BatchStore, RedisBatchStore
from aibroker.stores.control_view import ControlView
from aibroker.stores.files import Files, RedisFiles, file_store
from aibroker.stores.redis import connect
from aibroker.stores.responses import RedisResponseStore, ResponseStore
from aibroker.stores.responses_previous import continued_line
from aibroker.stores.results import RedisRequestStore, RequestStore
from aibroker.stores.tenants import RedisTenantStore, TenantStore, active_endpoints
from schemas.batch_file import Line, Unrun, line_request_id, output_line, read_input, unrun_line
from schemas.batches import Batch, BatchStarted, BatchStatus, Ending, OutputFile
from schemas.bodies import BODIES
from schemas.envelopes import Kind, Mode, Request, Result, Status
from schemas.terminal import terminal
from topics.catalog import TopicNames

log = logging.getLogger(__name__)

CHUNK = 100
"""Lines fed between two checkpoints (and two looks at the batch's status)."""
BOUNDS_KEPT = 10_000
"""Batches whose parsed bounds the aggregator keeps (they never change; a batch's results
arrive over its whole run, so each result would otherwise re-read its metadata)."""


class BatchRunner:
    def __init__(
        self,
        publisher: Publisher,
        requests: RequestStore,
        tenants: TenantStore,
        batches: BatchStore,
        files: Files,
        settings: BatchSettings,
        responses: ResponseStore | None = None,
    ) -> None:
        self.publisher = publisher
        self.responses = responses
        """Stored responses, for lines naming `previous_response_id`."""
        self.requests = requests
        self.tenants = tenants
        self.batches = batches
        self.files = files
        self.settings = settings
        self._bounds: dict[str, Bounds] = {}

    async def on_event(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """A batch to run (from `POST /v1/batches`, or again after a crash)."""
        started_batch = decode(BatchStarted, record.value)
        batch = await self.batches.get(started_batch.batch_id)
        if batch is None or batch.status is not BatchStatus.IN_PROGRESS:
            return
        lines = await self._lines(batch)
        defaults = await self._line_defaults(batch)
        start = await self.batches.expanded(batch.id)
        started = time.monotonic()
        for first in range(start, len(lines), CHUNK):
            now = await self.batches.get(batch.id)
            if now is None or now.status is not BatchStatus.IN_PROGRESS:
                return  # cancelled or expired meanwhile: the sweeper ends it
            made = [_line_request(batch, line, defaults) for line in lines[first : first + CHUNK]]
            await self.publisher.submit_all(await self._continued(made))
            await self.batches.mark_expanded(batch.id, first + CHUNK)
            ahead = (first + CHUNK - start) / self.settings.expand_per_s
            await asyncio.sleep(max(0.0, ahead - (time.monotonic() - started)))

    async def _continued(self, made: list[Request]) -> list[Request]:
        """Responses lines naming `previous_response_id` with the conversation so far, as on
        `POST /v1/responses` (`stores.responses_previous`); a line whose previous response is not
        the tenant's, or has not completed, ends failed with the error the HTTP path gives."""
        if self.responses is None:
            return made
        fed = []
        for request in made:
            try:
                fed.append(await continued_line(self.responses, self.requests, request))
            except (NotFound, InvalidRequest) as exc:
                failed = terminal(request, Status.FAILED, error=exc.info())
                await self.publisher.result(failed, None)
        return fed

    async def _line_defaults(self, batch: Batch) -> dict[str, Any]:
        """What every line gets unless it sets it: the job's `aibroker.defaults` over its
        tenant's policy (`batch_service_tier`, a chat field: embeddings and OCR lines have no
        tier)."""
        tenant = await self.tenants.get(batch.tenant)
        tier = tenant.batch_service_tier if tenant is not None else None
        chat = batch.endpoint == Kind.CHAT.endpoint
        return ({"service_tier": tier} if tier and chat else {}) | _bounds_of(batch).defaults

    async def _lines(self, batch: Batch) -> list[Line]:
        data = await self.files.store.read(batch.input_file_id)
        lines = read_input(data, batch.endpoint, self.settings.max_lines)
        return [line for line in lines if isinstance(line, Line)]  # checked at creation

    async def on_result(self, record: ConsumerRecord[bytes, bytes]) -> None:
        result = decode(Result, record.value)
        if result.batch_id is None or result.custom_id is None:
            return
        ok, line = output_line(result)
        tally = await self.batches.record(
            result.batch_id,
            result.custom_id,
            ok,
            line,
            result.cost_usd,
            offloaded=result.provider_batch is not None,
        )
        if tally.finished >= tally.total:
            batch = await self.batches.get(result.batch_id)
            late = batch is not None and time.time() >= batch.expires_at
            await self.finalize(
                result.batch_id, BatchStatus.EXPIRED if late else BatchStatus.COMPLETED
            )
        else:
            await self.bound(result.batch_id, tally)

    async def bound(self, batch_id: str, tally: Tally) -> None:
        """Stop a running batch once it reached one of its caller's bounds: it goes the way
        of a client's cancel (`cancelling`, its open lines closed `cancelled`, then
        `cancelled`), with the reason on it. A line already running at that moment may still
        finish and bill: its usage event counts, its line stays `cancelled`."""
        bounds = await self._bounds_for(batch_id)
        reason = stop_reason(bounds, tally) if bounds.stops else None
        if reason is None:
            return
        errors = {"object": "list", "data": [stopped_error(reason, bounds, tally)]}
        stopped = await self.batches.transition(
            batch_id,
            BatchStatus.CANCELLING,
            int(time.time()),
            from_=(BatchStatus.IN_PROGRESS,),
            also={"aibroker_stopped_reason": reason.value, "errors": errors},
        )
        if stopped:
            log.info("batch %s stopped: %s reached", batch_id, reason.value)
            await self.sweep_one(batch_id)  # at once; the sweeper would within `sweep_s`

    async def _bounds_for(self, batch_id: str) -> Bounds:
        if (known := self._bounds.get(batch_id)) is not None:
            return known
        batch = await self.batches.get(batch_id)
        if batch is None:
            return NONE
        if len(self._bounds) >= BOUNDS_KEPT:
            self._bounds.clear()
        self._bounds[batch_id] = bounds = _bounds_of(batch)
        return bounds

    async def finalize(self, batch_id: str, end: Ending) -> None:
        """Write the output and error files, then end the batch (again after a crash: the
        files have fixed ids, the status moves once)."""
        batch = await self.batches.get(batch_id)
        if batch is None or batch.status.ended:
            return
        now = int(time.time())
        if end is BatchStatus.COMPLETED:
            await self.batches.transition(
                batch_id, BatchStatus.FINALIZING, now, from_=(BatchStatus.IN_PROGRESS,)
            )
        ok, failed = await self.batches.lines(batch_id)
        outputs: dict[str, Any] = {}
        which: OutputFile
        for which, rows in (("output", ok), ("error", failed)):
            if rows:
                file_id = batch.file_id(which)
                data = b"\n".join(rows) + b"\n"
                name = f"{batch_id}_{which}.jsonl"
                await self.files.put(file_id, batch.tenant, name, "batch_output", data)
                outputs[f"{which}_file_id"] = file_id
        await self.batches.update(batch_id, **outputs)
        if await self.batches.transition(batch_id, end, int(time.time()), from_=ENDS_FROM[end]):
            log.info("batch %s %s (%d ok, %d failed)", batch_id, end.value, len(ok), len(failed))
            ended = await self.batches.get(batch_id)
            assert ended is not None
            tenant = await self.tenants.get(ended.tenant)
            await self.publisher.batch_ended(ended, active_endpoints(tenant))

    async def sweep(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for batch_id in await self.batches.active():
                try:
                    await self.sweep_one(batch_id)
                except Exception:
                    log.exception("sweeping batch %s failed", batch_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.sweep_s)

    async def sweep_one(self, batch_id: str) -> None:
        batch = await self.batches.get(batch_id)
        if batch is None:
            return
        why = to_sweep(batch, time.time())
        if why is not None:
            await self.close_lines(batch, why)
            await self.finalize(batch_id, why)

    async def close_lines(self, batch: Batch, why: Unrun) -> None:
        """Every line without an output gets its error line now; the ones running are told
        to stop (their late results find their line taken)."""
        open_ids = await self.batches.unrecorded(batch.id)
        for custom_id in open_ids:  # first: an aborted call's result must find its line taken
            await self.batches.record(
                batch.id, custom_id, False, unrun_line(batch.id, custom_id, why)
            )
        await self.requests.cancel_all([line_request_id(batch.id, c) for c in open_ids])


ENDS_FROM: dict[BatchStatus, tuple[BatchStatus, ...]] = {
    BatchStatus.COMPLETED: (BatchStatus.FINALIZING,),
    BatchStatus.CANCELLED: (
        BatchStatus.CANCELLING,
        BatchStatus.IN_PROGRESS,
        BatchStatus.FINALIZING,
    ),
    BatchStatus.EXPIRED: (
        BatchStatus.CANCELLING,
        BatchStatus.IN_PROGRESS,
        BatchStatus.FINALIZING,
    ),
}
"""The statuses a batch may end from, by how it ends."""


def to_sweep(batch: Batch, now: float) -> Unrun | None:
    """How the sweeper ends a batch now: cancelled once a client asked, expired once its
    window passed while it ran; None to leave it."""
    if batch.status is BatchStatus.CANCELLING:
        return BatchStatus.CANCELLED
    if batch.status is BatchStatus.IN_PROGRESS and now >= batch.expires_at:
        return BatchStatus.EXPIRED
    return None


def _bounds_of(batch: Batch) -> Bounds:
    """The batch's bounds (checked when it was created: a bad one now is a bug, logged)."""
    try:
        return parse_bounds(batch.metadata)
    except BadBound as exc:
        log.error("batch %s runs unbounded: %s", batch.id, exc.message)
        return NONE


def _line_request(batch: Batch, line: Line, defaults: dict[str, Any]) -> Request:
    kind, _ = BODIES[batch.endpoint]
    body = with_defaults(line.body.model_dump(exclude_unset=True), defaults)
    return Request(
        id=line_request_id(batch.id, line.custom_id),
        tenant=batch.tenant,
        key_id=batch.key_id,
        user=batch.user,
        kind=kind,
        model=line.body.model,
        body=body,
        mode=Mode.BATCH,
        priority="batch",
        deadline=float(batch.expires_at),
        batch_id=batch.id,
        custom_id=line.custom_id,
        created_at=time.time(),
    )


async def run(settings: Settings, stop: asyncio.Event) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    async with connect(settings.redis) as redis, running_producer(settings.kafka) as producer:
        runner = BatchRunner(
            Publisher(producer, names, envelope_secret=settings.auth.envelope_secret),
            RedisRequestStore(redis, settings.redis.ttl_s),
            RedisTenantStore(redis, ControlView(redis, names.config)),
            RedisBatchStore(redis, settings.redis.ttl_s),
            RedisFiles(redis, file_store(settings.batch)),
            settings.batch,
            RedisResponseStore(redis, settings.responses),
        )
        # Neither is on a caller's path (a batch takes minutes to hours): the longer idle
        # fetch wait, which on Tansu spares a poll every 10 ms for each.
        specs = [
            WorkerSpec(
                "batches.expander",
                [names.batches],
                "aib-batches-expander",
                runner.on_event,
                16,
                idle=True,
            ),
            WorkerSpec(
                "batches.aggregator",
                [names.results],
                "aib-batches",
                runner.on_result,
                256,
                idle=True,
            ),
        ]
        await run_service(settings, producer, specs, stop, runner.sweep(stop))
