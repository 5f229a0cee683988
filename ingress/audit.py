"""Writing the audit log from ingress: every admin change as it is made, every permission
refused, and refused authentications gathered per actor, claimed subject, source and reason
over a short window (a brute-force flood is one entry with a count, not one write per guess;
a flood of ever new claims is at most `MAX_REFUSALS` entries a window)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any, NamedTuple

from aiokafka.errors import KafkaError
from fastapi import Request

from aibroker.identity import Caller
from aibroker.kafka.publisher import Publisher
from aibroker.telemetry import metrics
from schemas.audit import ANONYMOUS, AuditEntry, AuditOutcome

log = logging.getLogger(__name__)

MAX_REFUSALS = 1000
"""Distinct refusal entries a window at most; past them, refusals are counted per reason
alone (actor `anonymous`, no claim, no source)."""


class Refusal(NamedTuple):
    actor: str
    """Who proved to be calling, or `anonymous`."""
    claimed: str | None
    """What the credential claimed to be, unverified."""
    claimed_issuer: str | None
    reason: str
    source: str | None


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

    def refused(
        self,
        request: Request,
        reason: str,
        *,
        actor: str = ANONYMOUS,
        claimed: str | None = None,
        claimed_issuer: str | None = None,
    ) -> None:
        """Count a refused authentication; `run` writes the counts once per window."""
        metrics.AUTH_REFUSED.labels(reason).inc()
        refusal = Refusal(actor, claimed, claimed_issuer, reason, source_of(request))
        if refusal not in self._refusals and len(self._refusals) >= MAX_REFUSALS:
            refusal = Refusal(ANONYMOUS, None, None, reason, None)
        self._refusals[refusal] += 1

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
        for refusal, count in counted.items():
            entry = AuditEntry(
                at=now,
                actor=refusal.actor,
                claimed_subject=refusal.claimed,
                claimed_issuer=refusal.claimed_issuer,
                action="auth.refused",
                outcome=AuditOutcome.REFUSED,
                source=refusal.source,
                detail={"reason": refusal.reason, "count": count, "window_s": self._window_s},
            )
            try:
                await self._publisher.audit(entry)
            except KafkaError as exc:
                log.warning("refused authentications not audited (%r)", exc)
                self._refusals.update({refusal: count})
                return
