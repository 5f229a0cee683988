"""The keeper of the view: reads the config topic in order and applies each record to Redis; at
start, and whenever it finds the view empty or behind, it reads the log again and marks the
view ready only once the view has all of it. Any number of keepers may run: the view's guard
applies each record once, in order, whoever gets there first."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from redis.exceptions import RedisError

from aibroker.control.decisions import START, next_read_from, replay_from
from aibroker.control.entries import decode
from aibroker.stores.control_view import ControlView

log = logging.getLogger(__name__)

CHECK_S = 0.5
"""How often a keeper looks for a view that was lost: the bound on how long misses are served
as 503 after a flush, before the replay (milliseconds for a control plane) begins."""
RETRY_S = (0.5, 5.0)
"""First and longest wait before trying again while Redis or Kafka does not answer."""


class ViewKeeper:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        topic: str,
        view: ControlView,
        *,
        check_s: float = CHECK_S,
    ) -> None:
        self._consumer = consumer
        self._tp = TopicPartition(topic, 0)
        self._view = view
        self._check_s = check_s
        self._read_from = START
        self._expected = 0
        """The next offset the view needs, given what this keeper has handled."""
        self._through = 0
        """Every record below this offset was in the view when this keeper handled it."""
        self._progress = asyncio.Condition()
        self.rebuilds = 0
        """Reads of the log after a view was found empty or behind (logs and tests)."""
        self.caught_up = False
        """The view was marked ready after this keeper's last (re)read of the log."""

    async def start(self) -> None:
        """Read the log into the view until it is ready: from the view's marker when it is
        ready already (a restart), else from the start. Redis down: `run` does it later."""
        self._consumer.assign([self._tp])
        self._seek(None)
        try:
            marker, ready = await self._view.position()
            self._seek(marker if ready else None)
            await self.catch_up()
        except RedisError as exc:
            log.warning("config view not read at start (%r); it will be once Redis answers", exc)

    async def run(self) -> None:
        """Apply what comes, and look for a lost view every `check_s`, until cancelled."""
        delay = RETRY_S[0]
        while True:
            try:
                if not self.caught_up:
                    await self.catch_up()
                    delay = RETRY_S[0]
                await self._tail()
            except (RedisError, KafkaError, OSError) as exc:
                log.warning("config view not kept (%r); again in %.1fs", exc, delay)
                self.caught_up = False
                self._seek(self._expected if self._read_from != START else None)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_S[1])

    async def applied_through(self, offset: int, timeout_s: float) -> None:
        """Wait until the record at `offset` is in the view."""
        async with self._progress:
            await asyncio.wait_for(
                self._progress.wait_for(lambda: self._through > offset), timeout_s
            )

    async def catch_up(self) -> None:
        """Read to the log's end as it is now, then mark the view ready; read again from
        where the view is whenever it turns out to lack records."""
        while True:
            end = (await self._consumer.end_offsets([self._tp]))[self._tp]
            complete = True
            while complete and await self._consumer.position(self._tp) < end:
                batch = await self._consumer.getmany(self._tp, timeout_ms=1000)
                complete = await self._apply_all(batch.get(self._tp, []))
            if not complete:
                continue
            empty = self._read_from == START  # read from the start and found no record
            ready = await self._view.mark_ready(self._expected, empty_log=empty)
            if ready.outcome != "behind":
                self.caught_up = True
                return
            await self._lost(ready.marker)

    async def _tail(self) -> None:
        next_check = time.monotonic() + self._check_s
        while True:
            batch = await self._consumer.getmany(self._tp, timeout_ms=int(self._check_s * 1000))
            if not await self._apply_all(batch.get(self._tp, [])):
                await self.catch_up()
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + self._check_s
                await self._check()

    async def _check(self) -> None:
        marker, ready = await self._view.position()
        seek = replay_from(marker, self._expected)
        if seek is not None:
            await self._lost(marker)
            await self.catch_up()
        elif not ready:  # another keeper found a lost tail: it is being read again
            await self.catch_up()

    async def _apply_all(self, records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        """Apply records in order; False (and a seek) when the view turned out to lack some."""
        for record in records:
            change = decode(record.key, record.value)
            done = await self._view.apply(change, offset=record.offset, read_from=self._read_from)
            if done.outcome == "behind":
                await self._lost(done.marker)
                return False
            self._read_from = next_read_from(self._read_from, record.offset)
            self._expected = record.offset + 1
            async with self._progress:
                self._through = max(self._through, self._expected)
                self._progress.notify_all()
        return True

    async def _lost(self, marker: int | None) -> None:
        """The view lacks records this keeper read: read them again, misses not trusted."""
        self.rebuilds += 1
        if marker is None:
            log.warning("the config view in Redis is empty: rebuilding it from the topic")
        else:
            log.warning("the config view in Redis is behind (at %d): reading on from there", marker)
            await self._view.not_ready()
        self._seek(marker)

    def _seek(self, marker: int | None) -> None:
        if marker is None:
            self._consumer.seek(self._tp, 0)  # the earliest kept record at or after 0
            self._read_from, self._expected = START, 0
        else:
            self._consumer.seek(self._tp, marker)
            self._read_from, self._expected = marker, marker
