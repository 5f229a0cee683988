"""The dispatcher's handlers: requests → target topics, outcomes → retry or terminal error,
delay topics → back to their destination when due."""

from __future__ import annotations

import asyncio
import logging
import random
import time

from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from aibroker import metrics
from aibroker.kafka import decode
from aibroker.publish import Publisher, expired_error, terminal
from aibroker.routes import RouteTable
from dispatcher.policy import (
    Dispatch,
    Expire,
    Fail,
    Fallback,
    Reject,
    RetryPolicy,
    choose_target,
    delay_topic,
    next_step,
)
from schemas.envelopes import Outcome, Request, Status

log = logging.getLogger(__name__)

DUE_HEADER = "aib-due"
DEST_HEADER = "aib-dest"


class Dispatcher:
    def __init__(self, publisher: Publisher, routes: RouteTable, policy: RetryPolicy) -> None:
        self.publisher = publisher
        self.routes = routes
        self.policy = policy
        self.names = publisher.names

    async def on_request(self, record: ConsumerRecord[bytes, bytes]) -> None:
        request = decode(Request, record.value)  # undecodable: the worker sends it to the DLQ
        try:
            await self.route(request)
        except KafkaError:
            raise  # the worker retries: the output was not produced
        except Exception as exc:
            log.exception("routing failed on %s", request.id)
            await self.publisher.internal_failure(request, exc)

    async def route(self, request: Request) -> None:
        decision = choose_target(request, self.routes, time.time())
        if isinstance(decision, Expire):
            await self.publisher.result(
                terminal(request, Status.EXPIRED, error=expired_error()), request.reply_to
            )
        elif isinstance(decision, Reject):
            await self.publisher.fail(request, decision.error)
        else:
            await self._dispatch(request, decision)

    async def _dispatch(self, request: Request, decision: Dispatch) -> None:
        routed = request.model_copy(update={"target": decision.target})
        await self.publisher.request(self.routes.topic(self.names, decision.target), routed)

    async def on_outcome(self, record: ConsumerRecord[bytes, bytes]) -> None:
        outcome = decode(Outcome, record.value)
        request = outcome.request
        if request.target is None:
            raise ValueError("an outcome without a target cannot be retried")
        now = time.time()
        rest = request.model_copy(
            update={
                "tried": [*request.tried, request.target],
                "target": None,
                "target_attempt": 1,
                "attempt": request.attempt + 1,
            }
        )
        can_fall_back = isinstance(choose_target(rest, self.routes, now), Dispatch)
        step = next_step(
            request.target_attempt,
            outcome.error,
            outcome.retry_after,
            self.policy,
            can_fall_back=can_fall_back,
            jitter=random.random(),
            now=now,
            deadline=request.deadline,
        )
        if isinstance(step, Fallback):
            log.info(
                "request %s falls back from %s/%s",
                request.id,
                request.target.provider,
                request.target.model,
            )
            metrics.FALLBACKS.labels(request.target.provider).inc()
            await self.route(rest)
        elif isinstance(step, Fail):
            if step.exhausted:
                reason = f"retries exhausted after {request.attempt} attempts: "
                await self.publisher.dead_letter(
                    request, reason + outcome.error.message, kind="exhausted"
                )
            await self.publisher.fail(request, outcome.error)
        else:
            again = request.model_copy(
                update={
                    "attempt": request.attempt + 1,
                    "target_attempt": request.target_attempt + 1,
                }
            )
            headers = [
                (DUE_HEADER, f"{now + step.delay_s:.3f}".encode()),
                (DEST_HEADER, self.routes.topic(self.names, request.target).encode()),
            ]
            topic = self.names.retry(delay_topic(step.delay_s))
            metrics.RETRIES.labels(request.target.provider).inc()
            await self.publisher.request(topic, again, headers)

    async def on_delayed(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Hold a retry until it is due, then send it on. Sleeping is right here: a delay
        topic holds only waiting work, ordered by due time."""
        headers = dict(record.headers or ())
        due = float(headers[DUE_HEADER])
        dest = headers[DEST_HEADER].decode()
        wait = due - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        await self.publisher.producer.send_and_wait(dest, record.value, key=record.key)
