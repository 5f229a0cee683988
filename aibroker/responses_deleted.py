"""A deleted response stays deleted when Redis is rebuilt from Kafka: `DELETE
/v1/responses/{id}` writes its deletion to the audit log (action `response.delete`, the tenant,
the id as target) before it forgets the response in Redis, and the results rebuild
(`consumers/results/rebuild.py`) leaves every response deleted this way out of what it
replays. The audit topic keeps its entries 13 months, longer than `results` keeps the result
the deletion hides. Pure: the entry made, and read back."""

from __future__ import annotations

from schemas.audit import AuditEntry, AuditOutcome

ACTION = "response.delete"


def deletion(
    response_id: str,
    tenant: str,
    *,
    actor: str,
    at: float,
    source: str | None = None,
    request_id: str | None = None,
) -> AuditEntry:
    """The audit entry of a response deleted by its tenant's key (`actor`: the key's id)."""
    return AuditEntry(
        at=at,
        actor=actor,
        action=ACTION,
        tenant=tenant,
        target=response_id,
        outcome=AuditOutcome.OK,
        source=source,
        request_id=request_id,
    )


def deleted_id(entry: AuditEntry) -> str | None:
    """The response an audit entry deleted; None for any other entry."""
    if entry.action != ACTION or entry.outcome is not AuditOutcome.OK or not entry.target:
        return None
    return entry.target
