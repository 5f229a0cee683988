"""Writing the audit log from ingress: every admin change as it is made, every permission
refused, and refused authentications gathered per subject, source and reason over a short
window (a brute-force flood is one entry with a count, not one write per guess)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import Request

from aibroker.identity import Caller
from aibroker.kafka.publisher import Publisher
from aibroker.telemetry import metrics
from schemas.audit import AuditEntry, AuditOutcome

log = logging.getLogger(__name__)

Refusal = tuple[str, str, str | None]
"""(subject, reason, source address)."""


def source_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_id_of(request: Request) -> str | None:
    found = getattr(request.state, "request_id", None)
    return str(found) if found else None


class Auditor:
    def __init__(self, publisher: Publisher, window_s: float) -> None:
        self._publisher = publisher
        self._window_s = window_s
        self._refusals: Counter[Refusal] = Counter()

    async def record(
        self,
        request: Request,
        caller: Caller,
        action: str,
        *,
        tenant: str | None,
        target: str | None,
        outcome: AuditOutcome = AuditOutcome.OK,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """One entry, written before the answer goes out (Kafka down: the answer is 503, the
        change stands, and a retry of it is audited)."""
        await self._publisher.audit(
            AuditEntry(
                at=time.time(),
                actor=caller.subject,
                role=caller.role,
                user=caller.user,
                action=action,
                tenant=tenant,
                target=target,
                outcome=outcome,
                source=source_of(request),
                request_id=request_id_of(request),
                detail=detail or {},
            )
        )

    def refused(self, request: Request, subject: str, reason: str) -> None:
        """Count a refused authentication; `run` writes the counts once per window."""
        metrics.AUTH_REFUSED.labels(reason).inc()
        self._refusals[(subject, reason, source_of(request))] += 1

    async def run(self) -> None:
        """Write the refusals counted in each window until cancelled (then once more)."""
        try:
            while True:
                await asyncio.sleep(self._window_s)
                await self.flush()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush(), timeout=2.0)

    async def flush(self) -> None:
        counted, self._refusals = self._refusals, Counter()
        now = time.time()
        for (subject, reason, source), count in counted.items():
            entry = AuditEntry(
                at=now,
                actor=subject,
                action="auth.refused",
                outcome=AuditOutcome.REFUSED,
                source=source,
                detail={"reason": reason, "count": count, "window_s": self._window_s},
            )
            try:
                await self._publisher.audit(entry)
            except KafkaError as exc:
                log.warning("refused authentications not audited (%r)", exc)
                self._refusals.update({(subject, reason, source): count})
                return
