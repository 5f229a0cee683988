"""The input guardrails on the accept path: the tenant's policy run on the envelope's body
before the Kafka write, so the requests topic, the logs, the traces and the stored request
hold the redacted text, never the raw value (a reversible redaction's map goes to Redis only,
`restore_store`). A blocked request is answered 400 and audited;
nothing is written. With the tenant unreadable (Redis down), the envelope goes unmarked and
the dispatcher guards it instead."""

from __future__ import annotations

import logging

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from aibroker.guards.policy import Verdict, policy_of
from aibroker.guards.restore_store import RestoreMaps
from aibroker.guards.scan import guard_input_restorable
from aibroker.stores.guard import deadline
from aibroker.telemetry.guardrails import blocked_entry, noted
from ingress.state import Services
from schemas.envelopes import Request

log = logging.getLogger(__name__)


async def guarded(svc: Services, request: Request) -> Request:
    """The envelope to write: its body as the tenant's input policy leaves it, marked
    `guarded`; or `ContentPolicyViolation` raised for a `block` policy that found something."""
    try:
        with deadline(svc.settings.redis.request_timeout_s):
            tenant = await svc.tenants.get(request.tenant)
    except RedisError:
        return request  # unmarked: the dispatcher runs the policy before routing it
    policy = policy_of(tenant.guardrails if tenant else None, request.model)
    body, verdict, values = guard_input_restorable(policy, request.body)
    if verdict is not None:
        noted(verdict, request.tenant, request.id, "ingress")
        if verdict.blocked:
            await _audit_block(svc, request, verdict)
            raise verdict.error()
    if values:
        await _keep(svc, request, values)
    return request.model_copy(update={"body": body, "guarded": True})


async def _keep(svc: Services, request: Request, values: dict[str, str]) -> None:
    """The map of a reversible redaction, for the pool that restores the answer; written
    before the request, so no pool can answer first. Unwritten, the answer keeps its
    placeholders: nothing leaks, the caller reads `<EMAIL_1>`."""
    try:
        with deadline(svc.settings.redis.request_timeout_s):
            await RestoreMaps(svc.redis, svc.settings.redis.ttl_s).put(request.id, values)
    except RedisError as exc:
        log.warning("placeholders of %s will not be restored (%r)", request.id, exc)


async def _audit_block(svc: Services, request: Request, verdict: Verdict) -> None:
    try:
        await svc.publisher.audit(blocked_entry(request, verdict, "ingress"))
    except KafkaError as exc:  # the refusal stands; only its record is missing
        log.warning("blocked request %s not audited (%r)", request.id, exc)
