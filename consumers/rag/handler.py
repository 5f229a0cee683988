"""One record of `rag.jobs` → its operation → one result on `results`. The offset is
committed only after the result is written (the worker runtime), so a crash redelivers the job
and the operation runs again, which every operation may (stable ids, records keyed by object).
A job that has ended already (its result written just before a crash) is not run again."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from qdrant_client.http.exceptions import ResponseHandlingException
from redis.exceptions import RedisError

from aibroker.errors import BrokerError, Unavailable
from aibroker.kafka.clients import decode
from consumers.rag import collections, indexing
from consumers.rag.context import JobFailed, RagContext
from schemas.envelopes import ErrorInfo, Result, Status
from schemas.rag import RagJob, RagOp
from schemas.terminal import expired_error

log = logging.getLogger(__name__)

Operation = Callable[[RagContext, RagJob], Awaitable[dict[str, Any]]]
OPERATIONS: dict[RagOp, Operation] = {
    RagOp.CREATE: collections.create,
    RagOp.LIST: collections.listed,
    RagOp.SHOW: collections.show,
    RagOp.DROP: collections.drop,
    RagOp.ATTACH: collections.attach,
    RagOp.FILES: collections.files,
    RagOp.DETACH: collections.detach,
    RagOp.INDEX: indexing.run_index,
    RagOp.SEARCH: indexing.run_search,
}
READS = {RagOp.LIST, RagOp.SHOW, RagOp.FILES, RagOp.SEARCH}
"""Operations that change nothing: their results are not announced (no webhook)."""


class JobHandler:
    def __init__(self, ctx: RagContext) -> None:
        self.ctx = ctx

    async def on_job(self, record: ConsumerRecord[bytes, bytes]) -> None:
        job = decode(RagJob, record.value)
        state = await self.ctx.results.get(job.id)
        if state is not None and state.status.terminal:
            return
        if job.deadline is not None and job.deadline < time.time():
            await self._end(job, Status.EXPIRED, None, expired_error())
            return
        await self.ctx.results.advance(job.id, job.tenant, Status.RUNNING)
        started = time.time()
        try:
            await self.ctx.registry.catch_up()  # another worker's writes, in the log's order
            response = await OPERATIONS[job.op](self.ctx, job)
        except JobFailed as failed:
            await self._end(job, Status.FAILED, failed.response, failed.error.info(), started)
            return
        except BrokerError as exc:
            if exc.retryable:
                raise  # Kafka, Redis or the pool not reachable: retried in place
            await self._end(job, Status.FAILED, None, exc.info(), started)
            return
        except (httpx.TransportError, ResponseHandlingException) as exc:
            raise Unavailable(f"Qdrant did not answer: {exc}") from exc
        except TimeoutError:
            info = ErrorInfo(
                message="The embeddings pool did not answer in time.",
                type="server_error",
                code="timeout",
                http_status=504,
            )
            await self._end(job, Status.FAILED, None, info, started)
            return
        except (KafkaError, RedisError):
            raise  # retried in place by the worker
        except Exception:  # a bug: the job still ends, once
            log.exception("rag job %s (%s) failed internally", job.id, job.op.value)
            error = BrokerError("The broker failed internally on this operation.")
            await self._end(job, Status.FAILED, None, error.info(), started)
            return
        await self._end(job, Status.SUCCEEDED, response, None, started)

    async def _end(
        self,
        job: RagJob,
        status: Status,
        response: dict[str, Any] | None,
        error: ErrorInfo | None,
        started: float | None = None,
    ) -> None:
        now = time.time()
        result = Result(
            id=job.id,
            tenant=job.tenant,
            status=status,
            response=response,
            error=error,
            queued_ms=((started or now) - job.created_at) * 1000,
            service_ms=(now - started) * 1000 if started else None,
            total_ms=(now - job.created_at) * 1000,
            finished_at=now,
            webhook=None if job.op in READS else job.webhook,
            internal=True if job.op in READS else None,
        )
        await self.ctx.publisher.result(result, None)
