"""What a guardrail's verdict leaves behind in every process that runs one: the findings
counted by guard, action and tenant, one log line naming the types found (never a value), and
the audit record of a blocked request."""

from __future__ import annotations

import logging
import time
from typing import Any

from aibroker.guards.policy import Verdict
from aibroker.telemetry import metrics
from schemas.audit import AuditEntry, AuditOutcome
from schemas.envelopes import Request

log = logging.getLogger("aibroker.guardrails")


def noted(verdict: Verdict, tenant: str, request_id: str | None, where: str) -> None:
    """Count and log the verdict's findings (a verdict that found nothing leaves nothing)."""
    total = sum(verdict.found.values())
    if not total:
        return
    metrics.GUARD_FINDINGS.labels(verdict.guard, verdict.action.value, tenant).inc(total)
    found = ", ".join(f"{entity}={n}" for entity, n in sorted(verdict.found.items()))
    log.info(
        "guardrail %s (%s) at %s found %s in request %s of tenant %s",
        verdict.guard,
        verdict.action.value,
        where,
        found,
        request_id or "-",
        tenant,
    )


def blocked_entry(request: Request, verdict: Verdict, where: str) -> AuditEntry:
    """The audit record of a blocked request: who sent it, the guard, the types found."""
    detail: dict[str, Any] = {
        "guard": verdict.guard,
        "found": dict(sorted(verdict.found.items())),
        "model": request.model,
        "where": where,
    }
    return AuditEntry(
        at=time.time(),
        actor=request.key_id or f"tenant:{request.tenant}",
        user=request.user,
        action=f"guardrails.{verdict.guard}.block",
        tenant=request.tenant,
        target=request.id,
        outcome=AuditOutcome.REFUSED,
        detail=detail,
    )
