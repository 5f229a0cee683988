"""Writing the control plane: each change goes to the config topic first (acks=all), and the
call returns once this process's keeper has it in the view, so an admin call answers only
after both, and what it answers is what every reader of Redis sees."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.errors import KafkaError

from aibroker.control.entries import encode
from aibroker.control.keeper import ViewKeeper
from aibroker.errors import Unavailable
from aibroker.kafka.producer import Producer
from aibroker.stores.control_view import Change

APPLY_TIMEOUT_S = 10.0
"""How long a change written to the topic may take to reach the view before the caller is
told 503 (it is recorded, and every keeper will apply it)."""


class LogWriter:
    def __init__(
        self,
        producer: Producer,
        topic: str,
        keeper: ViewKeeper,
        *,
        apply_timeout_s: float = APPLY_TIMEOUT_S,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._keeper = keeper
        self._apply_timeout_s = apply_timeout_s

    async def append(self, changes: Sequence[Change]) -> int:
        """Write the changes in order; the offset of the last (-1: none)."""
        last = -1
        try:
            for change in changes:
                key, value = encode(change)
                written = await self._producer.send_and_wait(self._topic, value, key, partition=0)
                last = written.offset
        except KafkaError as exc:
            raise Unavailable(
                "The control plane cannot be written right now (Kafka); retry shortly.",
                retry_after=2,
            ) from exc
        return last

    async def commit(self, changes: Sequence[Change]) -> None:
        """Write the changes, then wait until the view has them."""
        last = await self.append(changes)
        if last < 0:
            return
        try:
            await self._keeper.applied_through(last, self._apply_timeout_s)
        except TimeoutError:
            raise Unavailable(
                "The change is recorded but not applied yet; it will be. Read it back shortly.",
                retry_after=2,
            ) from None
