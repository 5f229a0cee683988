"""The pure rules of identity and governance: roles and permissions, what a tenant admin may
grant, budget thresholds, rate-limit buckets, usage percentiles, envelope signatures, the JWT
issuer settings, and worker liveness."""

from __future__ import annotations

from decimal import Decimal
from functools import partial

import pytest
from pydantic import ValidationError

from aibroker.budget import reached
from aibroker.identity import Caller, Permission, Role, may, scope_of
from aibroker.limits import Limits, exceeded
from aibroker.rules.quota import bucket
from aibroker.settings.auth import JwtIssuer
from aibroker.signing import Signer, proof, refusal, signature_header
from aibroker.telemetry.liveness import Heartbeats
from aibroker.usage_report import percentile

pytestmark = pytest.mark.unit

ADMIN = Caller("a", roles=frozenset({Role.ADMIN}))
VIEWER = Caller("v", roles=frozenset({Role.VIEWER}))
ACME_ADMIN = Caller("t", tenant="acme", roles=frozenset({Role.TENANT_ADMIN}))
ACME_USER = Caller("u", tenant="acme")


@pytest.mark.parametrize(
    ("caller", "permission", "tenant", "allowed"),
    [
        (ADMIN, Permission.TENANTS_WRITE, "acme", True),
        (ADMIN, Permission.HEALTH_READ, None, True),
        (VIEWER, Permission.KEYS_READ, "acme", True),
        (VIEWER, Permission.KEYS_WRITE, "acme", False),
        (VIEWER, Permission.HEALTH_READ, None, True),
        (ACME_ADMIN, Permission.KEYS_WRITE, "acme", True),
        (ACME_ADMIN, Permission.KEYS_WRITE, "globex", False),
        (ACME_ADMIN, Permission.KEYS_READ, None, False),
        (ACME_ADMIN, Permission.TENANTS_WRITE, "acme", False),
        (ACME_ADMIN, Permission.HEALTH_READ, None, False),
        (ACME_ADMIN, Permission.RATELIMIT_WRITE, "acme", False),
        (ACME_USER, Permission.KEYS_READ, "acme", False),
    ],
)
def test_roles_grant_permissions_on_tenants(
    caller: Caller, permission: Permission, tenant: str | None, allowed: bool
) -> None:
    assert may(caller, permission, tenant) is allowed


def test_a_tenant_admin_lists_its_own_tenant_unless_it_asks() -> None:
    assert scope_of(ACME_ADMIN, None) == "acme"
    assert scope_of(ACME_ADMIN, "globex") == "globex"  # then refused by `may`
    assert scope_of(ADMIN, None) is None
    assert ADMIN.role is Role.ADMIN
    assert Caller("x", roles=frozenset({Role.VIEWER, Role.TENANT_ADMIN})).role is Role.TENANT_ADMIN


def test_a_key_may_not_be_granted_more_than_its_tenant() -> None:
    tenant = Limits(rpm=100, budget_usd_month=Decimal(10))
    assert exceeded(Limits(rpm=50), tenant) is None
    assert exceeded(Limits(), tenant) is None  # bound by the tenant's own
    assert exceeded(Limits(rpm=101), tenant) == "rpm"
    assert exceeded(Limits(budget_usd_month=Decimal(11)), tenant) == "budget_usd_month"
    assert exceeded(Limits(tpm=10**6), tenant) is None  # the tenant sets no tpm


def test_budget_thresholds() -> None:
    budget = Decimal("10")
    assert reached(Decimal("4.99"), budget) == []
    assert reached(Decimal("5"), budget) == [50]
    assert reached(Decimal("9.99"), budget) == [50, 80]
    assert reached(Decimal("12"), budget) == [50, 80, 100]
    assert reached(Decimal("0"), Decimal("0")) == [50, 80, 100]


def test_a_bucket_refills_continuously() -> None:
    assert bucket([None, None], 60, 100.0).remaining == 60
    half = bucket(["30", "100"], 60, 100.0)
    assert (half.remaining, half.reset_s) == (30, 30.0)
    later = bucket(["30", "100"], 60, 110.0)
    assert (later.remaining, later.reset_s) == (40, 20.0)
    assert bucket(["0", "0"], 60, 1000.0).remaining == 60


def test_latency_percentiles_from_the_histogram() -> None:
    assert percentile([0] * 13, 0.5) is None
    histogram = [0, 5, 4, 1] + [0] * 9  # <=50 ms: 5, <=100: 4, <=250: 1
    assert percentile(histogram, 0.5) == 50
    assert percentile(histogram, 0.9) == 100
    assert percentile(histogram, 0.99) == 250
    assert percentile([0] * 12 + [3], 0.5) == 120000  # the open bucket: "more than that"


def test_envelope_signatures() -> None:
    value = b'{"id": "req_1", "tenant": "acme"}'
    broker = "broker-" + "secret"
    secrets = {"acme": "acme-secret"}
    by_tenant = [signature_header(value, "acme-secret", Signer.TENANT)]
    by_broker = [signature_header(value, "broker-secret")]
    assert proof(value, by_tenant, "acme", "broker-secret", secrets) is Signer.TENANT
    assert proof(value, by_broker, "acme", "broker-secret", secrets) is Signer.BROKER
    assert proof(value, by_tenant, "globex", "broker-secret", secrets) is None
    assert proof(value + b" ", by_broker, "acme", "broker-secret", secrets) is None
    lenient = partial(refusal, broker_secret=broker, producer_secrets=secrets, required=False)
    strict = partial(refusal, broker_secret=broker, producer_secrets=secrets, required=True)
    assert lenient(value, [], "acme") is None
    assert strict(value, [], "acme") == "it is unsigned"
    assert strict(value, by_tenant, "acme") is None
    forged = [signature_header(value, "guess", Signer.TENANT)]
    assert lenient(value, forged, "acme") == "its signature does not verify for its tenant"


def test_an_issuer_accepts_public_key_algorithms_only() -> None:
    base = {"issuer": "https://idp", "jwks_url": "https://idp/jwks", "audience": "aibroker"}
    assert JwtIssuer.model_validate(base).algorithms == ["RS256", "ES256"]
    for refused in (["HS256"], ["none"], ["RS256", "HS512"], []):
        with pytest.raises(ValidationError):
            JwtIssuer.model_validate(base | {"algorithms": refused})


def test_a_loop_that_stops_beating_is_reported() -> None:
    beats = Heartbeats()
    beats.beat("dispatcher")
    assert beats.silent(max_silence_s=60) == []
    assert beats.silent(max_silence_s=-1) == ["dispatcher"]
    beats.forget("dispatcher")
    assert beats.silent(max_silence_s=-1) == []
