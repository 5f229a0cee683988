"""The input guardrails on the accept path: the tenant's policy run on the envelope's body
before the Kafka write, so the requests topic, the logs, the traces and the stored request
hold the redacted text, never the raw value. A blocked request is answered 400 and audited;
nothing is written. With the tenant unreadable (Redis down), the envelope goes unmarked and
the dispatcher guards it instead."""

from __future__ import annotations

import logging

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from aibroker.guards.policy import Verdict, policy_of
from aibroker.guards.scan import guard_input
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
    body, verdict = guard_input(policy, request.body)
    if verdict is not None:
        noted(verdict, request.tenant, request.id, "ingress")
        if verdict.blocked:
            await _audit_block(svc, request, verdict)
            raise verdict.error()
    return request.model_copy(update={"body": body, "guarded": True})


async def _audit_block(svc: Services, request: Request, verdict: Verdict) -> None:
    try:
        await svc.publisher.audit(blocked_entry(request, verdict, "ingress"))
    except KafkaError as exc:  # the refusal stands; only its record is missing
        log.warning("blocked request %s not audited (%r)", request.id, exc)
