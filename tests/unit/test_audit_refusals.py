"""The auditor's window of refused authentications: one entry per actor, claim, reason and
source with its count, and a flood of ever new claims folded into one entry per reason past
`MAX_REFUSALS` (each refusal still counted). Written to a list: what reaches Kafka is the
integration tests' (tests/integration/test_audit.py)."""

from __future__ import annotations

from typing import cast

import pytest
from starlette.requests import Request

from aibroker.kafka.publisher import Publisher
from ingress.audit import MAX_REFUSALS, Auditor
from schemas.audit import ANONYMOUS, AuditEntry

pytestmark = [pytest.mark.unit]


class Written:
    """Where the entries go instead of the audit topic."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def audit(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


def request_from(host: str) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": "/", "headers": [], "client": (host, 1)}
    )


async def test_refusals_are_counted_per_claim_and_never_under_the_claim() -> None:
    written = Written()
    auditor = Auditor(cast(Publisher, written), window_s=10)
    for _ in range(3):
        auditor.refused(request_from("10.0.0.1"), "token_refused", claimed="jwt:bootstrap")
    auditor.refused(request_from("10.0.0.2"), "expired", actor="aib_abcdef")
    await auditor.flush()
    found = {(e.actor, e.claimed_subject, e.source): e.detail["count"] for e in written.entries}
    assert found == {
        (ANONYMOUS, "jwt:bootstrap", "10.0.0.1"): 3,
        ("aib_abcdef", None, "10.0.0.2"): 1,
    }


async def test_a_flood_of_new_claims_is_folded_past_the_cap() -> None:
    written = Written()
    auditor = Auditor(cast(Publisher, written), window_s=10)
    flood = MAX_REFUSALS + 500
    for i in range(flood):
        auditor.refused(request_from(f"10.0.{i // 250}.{i % 250}"), "unknown_key", claimed=f"g{i}")
    await auditor.flush()
    assert len(written.entries) == MAX_REFUSALS + 1
    assert sum(e.detail["count"] for e in written.entries) == flood
    folded = [e for e in written.entries if e.claimed_subject is None]
    assert [(e.actor, e.source, e.detail["count"]) for e in folded] == [(ANONYMOUS, None, 500)]
