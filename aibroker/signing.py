"""Envelopes on the requests topics prove who wrote them: an HMAC-SHA256 of the record's value
in the `aib-signature` header, keyed by the broker's own secret (ingress, the batch runner, the
dispatcher's re-entries) or by the tenant's producer secret (a direct producer writing for that
tenant). The dispatcher checks it; an envelope that does not verify names a tenant it has no
right to, and goes to the DLQ as `unauthenticated`.

A direct producer signs what it sends, with its tenant's secret:

    signature = hmac.new(secret.encode(), value, hashlib.sha256).hexdigest()
    headers = [("aib-signature", f"tenant={signature}".encode())]
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from enum import StrEnum

SIGNATURE_HEADER = "aib-signature"


class Signer(StrEnum):
    BROKER = "broker"
    """Signed with `AIBROKER_AUTH_ENVELOPE_SECRET` by a broker service."""
    TENANT = "tenant"
    """Signed with the envelope's tenant's producer secret."""


def signature(value: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), value, hashlib.sha256).hexdigest()


def signature_header(
    value: bytes, secret: str, signer: Signer = Signer.BROKER
) -> tuple[str, bytes]:
    return SIGNATURE_HEADER, f"{signer.value}={signature(value, secret)}".encode()


def proof(
    value: bytes,
    headers: Sequence[tuple[str, bytes]],
    tenant: str,
    broker_secret: str | None,
    producer_secrets: Mapping[str, str],
) -> Signer | None:
    """Who signed the envelope, if its signature verifies (compared in constant time); None for
    an unsigned envelope or one whose signature does not verify."""
    found = next((v for k, v in headers if k == SIGNATURE_HEADER), None)
    if found is None:
        return None
    name, _, given = found.decode(errors="replace").partition("=")
    secret = {
        Signer.BROKER.value: broker_secret,
        Signer.TENANT.value: producer_secrets.get(tenant),
    }.get(name)
    if not secret:
        return None
    return Signer(name) if hmac.compare_digest(given, signature(value, secret)) else None


def signed(headers: Sequence[tuple[str, bytes]]) -> bool:
    return any(k == SIGNATURE_HEADER for k, _ in headers)


def refusal(
    value: bytes,
    headers: Sequence[tuple[str, bytes]],
    tenant: str,
    *,
    broker_secret: str | None,
    producer_secrets: Mapping[str, str],
    required: bool,
) -> str | None:
    """Why an envelope for `tenant` is refused, or None to serve it. A signature that does not
    verify is always refused; an unsigned envelope only where signatures are required."""
    if signed(headers):
        if proof(value, headers, tenant, broker_secret, producer_secrets) is None:
            return "its signature does not verify for its tenant"
        return None
    return "it is unsigned" if required else None
