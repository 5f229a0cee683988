"""The input guardrails for requests that reach the dispatcher unguarded: a direct producer's
(written straight to a requests topic), or one ingress could not guard (Redis down). The
tenant's policy runs before the request is admitted or routed, so no provider sees a value the
policy redacts or blocks. Ingress's mark (`guarded`) is trusted unless a tenant signed the
envelope: a producer's own signature proves its tenant, not that its body was guarded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aibroker.guards.policy import policy_of
from aibroker.guards.scan import guard_input
from aibroker.kafka.publisher import Publisher
from aibroker.signing import SIGNATURE_HEADER, Signer
from aibroker.stores.tenants import Tenant
from aibroker.telemetry.guardrails import blocked_entry, noted
from dispatcher.injection import InjectionGuard
from schemas.envelopes import Request

TenantLookup = Callable[[str], Awaitable[Tenant | None]]


def trusted_mark(request: Request, headers: Sequence[tuple[str, bytes]]) -> bool:
    """Whether the envelope's `guarded` mark can be believed: set, and not on an envelope a
    tenant signed (ingress signs as the broker, or, with signatures off, not at all)."""
    if not request.guarded:
        return False
    tenant_signed = f"{Signer.TENANT.value}=".encode()
    return not any(k == SIGNATURE_HEADER and v.startswith(tenant_signed) for k, v in headers)


class InputGuard:
    def __init__(
        self, tenants: TenantLookup, publisher: Publisher, injection: InjectionGuard | None = None
    ) -> None:
        self._tenants = tenants
        self._publisher = publisher
        self._injection = injection

    async def guarded(
        self, request: Request, headers: Sequence[tuple[str, bytes]]
    ) -> Request | None:
        """`check`, then the injection guard, on every request (ingress's mark covers the PII
        guard only: the injection classifier is a pool, reached from here)."""
        checked = await self.check(request, headers)
        if checked is None or self._injection is None:
            return checked
        return await self._injection.check(checked)

    async def check(self, request: Request, headers: Sequence[tuple[str, bytes]]) -> Request | None:
        """The request to route on (redacted where the policy says, marked `guarded`), or None
        when the policy blocked it: then its failure (400 `content_policy_violation`) and its
        audit record are published here. A Redis error propagates: the worker retries, and
        nothing unguarded is routed meanwhile."""
        if trusted_mark(request, headers):
            return request
        tenant = await self._tenants(request.tenant)
        policy = policy_of(tenant.guardrails if tenant else None, request.model)
        body, verdict = guard_input(policy, request.body)
        if verdict is not None:
            noted(verdict, request.tenant, request.id, "dispatcher")
            if verdict.blocked:
                await self._publisher.audit(blocked_entry(request, verdict, "dispatcher"))
                await self._publisher.fail(request, verdict.error())
                return None
        return request.model_copy(update={"body": body, "guarded": True})
