"""The audit log's entries (the `audit` topic, one partition, keyed by tenant): who did what
to which object, and how it ended. No entry ever holds a secret: keys appear by id or by
their visible prefix, tokens by their subject. An actor is always proven (a key that matched,
a token whose signature verified); what a refused credential claimed to be is kept apart, in
`claimed_subject` and `claimed_issuer`, under the actor `anonymous`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AuditOutcome(StrEnum):
    OK = "ok"
    """The change was made."""
    DENIED = "denied"
    """Authenticated, but its role does not allow it (403)."""
    REFUSED = "refused"
    """Authentication failed (401), or a direct producer's envelope was not proven."""


ANONYMOUS = "anonymous"
"""The actor of an entry whose caller proved nothing (a refused key or token): no key prefix,
`jwt:` subject or `bootstrap` can be it."""


class AuditEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    at: float = Field(description="Unix time.")
    actor: str = Field(
        description="Who proved to be calling: a key's prefix, `jwt:<sub>` of a verified token, "
        "`bootstrap`, a producer, or `anonymous` when the credential proved nothing."
    )
    claimed_subject: str | None = Field(
        default=None,
        description="A refused credential's unverified claim, never trusted: the prefix of a key "
        "that does not exist, `jwt:<sub>` of a token that does not verify, or `sha256:<digest>`.",
    )
    claimed_issuer: str | None = Field(
        default=None, description="The `iss` a refused token claimed (unverified)."
    )
    role: str | None = Field(default=None, description="The actor's strongest role, if any.")
    user: str | None = Field(default=None, description="The end user a JWT named.")
    action: str = Field(description="e.g. `key.create`, `tenant.delete`, `auth.refused`.")
    tenant: str | None = Field(default=None, description="The tenant the target belongs to.")
    target: str | None = Field(default=None, description="The object: a key id, tenant, offset.")
    outcome: AuditOutcome
    source: str | None = Field(default=None, description="The caller's address.")
    request_id: str | None = Field(default=None, description="The HTTP answer's x-request-id.")
    detail: dict[str, Any] = Field(default_factory=dict, description="What changed; no secrets.")

    def matches(
        self,
        *,
        tenant: str | None,
        actor: str | None,
        action: str | None,
        since: float | None = None,
        until: float | None = None,
        claimed_subject: str | None = None,
    ) -> bool:
        """Whether the entry passes the audit listing's filters (None: any)."""
        return (
            (tenant is None or self.tenant == tenant)
            and (actor is None or self.actor == actor)
            and (action is None or self.action == action or self.action.startswith(action + "."))
            and (since is None or self.at >= since)
            and (until is None or self.at < until)
            and (claimed_subject is None or self.claimed_subject == claimed_subject)
        )
