"""JWT bearer tokens from a configured issuer: signed here with keys the test generates, their
JWKS served by a local issuer. Rotation, expiry, a wrong audience, `alg` confusion, `none`,
an `alg` that does not fit its key, malformed tokens, an unknown issuer; a token's user on the
envelope; roles from the token on the admin API."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Mapping
from functools import partial
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from prometheus_client import REGISTRY

from aibroker.kafka.clients import decode, make_consumer
from aibroker.settings import AuthSettings, JwtIssuer, ProviderSettings, Settings
from schemas.envelopes import Request
from tests.ingress_app import Served, serving
from tests.jwks import LocalIssuer, malformed_tokens, new_key
from tests.records import read
from tests.waiting import eventually
from topics.catalog import TopicNames

pytestmark = [pytest.mark.integration]

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def issuer() -> AsyncIterator[LocalIssuer]:
    async with LocalIssuer().serving() as running:
        yield running


@pytest.fixture
async def served(settings: Settings, issuer: LocalIssuer) -> AsyncIterator[Served]:
    auth = AuthSettings(jwt_issuers=[issuer.config(jwks_refetch_s=0.2)], refusals_window_s=0.3)
    mock = ProviderSettings(base_url="http://127.0.0.1:9/v1", api_key="unused")
    async with serving(settings, auth=auth, providers={"mock": mock}) as running:
        yield running


async def answer_to(served: Served, token: str) -> tuple[int, str]:
    async with served.client(token) as client:
        answer = await client.get("/v1/models")
    message = answer.json().get("error", {}).get("message", "") if answer.status_code != 200 else ""
    return answer.status_code, message


async def test_a_token_of_a_tenant_calls_the_api_as_its_user(
    served: Served, issuer: LocalIssuer, settings: Settings
) -> None:
    tenant = await served.tenant()
    token = issuer.token(tenant, sub="ann@example.com")
    assert await answer_to(served, token) == (200, "")
    names = TopicNames(settings.kafka.topic_prefix)
    consumer = make_consumer(settings.kafka, names.requests_interactive, group_id=None)
    await consumer.start()
    try:
        async with served.client(token) as client:
            accepted = await client.post(
                "/v1/chat/completions",
                json={"model": "mock/echo", "messages": HELLO},
                headers={"Prefer": "respond-async"},
            )
        assert accepted.status_code == 202
        written = [decode(Request, r.value) for r in await read(consumer, 1, timeout_s=10)]
    finally:
        await consumer.stop()
    assert [(r.tenant, r.user, r.key_id) for r in written] == [(tenant, "ann@example.com", None)]


async def test_rotated_signing_keys_are_fetched_when_first_seen(
    served: Served, issuer: LocalIssuer
) -> None:
    tenant = await served.tenant()
    assert (await answer_to(served, issuer.token(tenant)))[0] == 200
    fetched = issuer.fetches
    issuer.rotate()
    await asyncio.sleep(0.3)  # past the issuer's refetch interval
    assert (await answer_to(served, issuer.token(tenant)))[0] == 200
    assert issuer.fetches == fetched + 1
    assert (await answer_to(served, issuer.token(tenant)))[0] == 200  # cached now
    assert issuer.fetches == fetched + 1


async def test_what_does_not_verify_is_refused(served: Served, issuer: LocalIssuer) -> None:
    tenant = await served.tenant()
    now = time.time()
    expired = issuer.token(tenant, exp=int(now - 60), iat=int(now - 120))
    assert await answer_to(served, expired) == (401, "The token has expired.")
    early = issuer.token(tenant, nbf=int(now + 600))
    assert (await answer_to(served, early))[0] == 401
    wrong_aud = issuer.token(tenant, aud="someone-else")
    assert await answer_to(served, wrong_aud) == (
        401,
        "The token is not meant for this service (aud).",
    )
    stranger = LocalIssuer()
    assert await answer_to(served, stranger.token(tenant)) == (
        401,
        "The token's issuer is not trusted here.",
    )
    forged = jwt.encode(  # the same claims, signed by a key the issuer never published
        jwt.decode(issuer.token(tenant), options={"verify_signature": False}),
        stranger.keys[stranger.kid],
        algorithm="RS256",
        headers={"kid": issuer.kid},
    )
    assert (await answer_to(served, forged))[0] == 401


async def test_alg_confusion_and_none_are_refused(served: Served, issuer: LocalIssuer) -> None:
    """HS256 keyed with the issuer's public key (what a verifier that trusts the header would
    check against), and `alg: none`, never verify."""
    tenant = await served.tenant()
    claims = jwt.decode(issuer.token(tenant), options={"verify_signature": False})
    public_pem = (
        issuer.keys[issuer.kid]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "kid": issuer.kid, "typ": "JWT"}
    hmac_token = _hs256(header, claims, public_pem)
    assert await answer_to(served, hmac_token) == (
        401,
        "The token's algorithm 'HS256' is not accepted.",
    )
    unsigned = _segment({"alg": "none", "kid": issuer.kid}) + "." + _segment(claims) + "."
    assert await answer_to(served, unsigned) == (
        401,
        "The token's algorithm 'none' is not accepted.",
    )


async def test_a_token_of_an_inactive_tenant_is_refused(
    served: Served, issuer: LocalIssuer
) -> None:
    tenant = await served.tenant(active=False)
    assert await answer_to(served, issuer.token(tenant)) == (
        401,
        "The tenant of this credential is inactive.",
    )


async def test_roles_in_a_token_open_the_admin_api(served: Served, issuer: LocalIssuer) -> None:
    own, other = await served.tenant(), await served.tenant()
    tenant_admin = issuer.token(own, sub="ops@own", roles=["tenant_admin"])
    async with served.client(tenant_admin) as client:
        assert (await client.get(f"/admin/v1/keys?tenant={own}")).status_code == 200
        assert (await client.get(f"/admin/v1/keys?tenant={other}")).status_code == 403
    admin = issuer.token(None, sub="root@corp", roles=["admin"])
    async with served.client(admin) as client:
        made = await client.post("/admin/v1/keys", json={"tenant": other})
        assert made.status_code == 201
        # A token of no tenant calls the admin API only.
        assert (await client.get("/v1/models")).status_code == 401
    user = issuer.token(own, sub="plain-user")
    async with served.client(user) as client:
        assert (await client.get("/admin/v1/tenants")).status_code == 403


def _segment(part: Mapping[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")


def _hs256(header: Mapping[str, str], claims: Mapping[str, object], secret: bytes) -> str:
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")


@pytest.fixture
async def mixed(settings: Settings) -> AsyncIterator[tuple[Served, LocalIssuer]]:
    """An issuer publishing an RSA and an EC key side by side, with the default algorithms."""
    issuer = LocalIssuer()
    issuer.rotate("P-256")
    async with issuer.serving():
        config = issuer.config(
            algorithms=JwtIssuer.model_fields["algorithms"].get_default(call_default_factory=True)
        )
        auth = AuthSettings(jwt_issuers=[config], refusals_window_s=0.3)
        async with serving(settings, auth=auth) as running:
            yield running, issuer


def refused_count(reason: str) -> float:
    found = REGISTRY.get_sample_value("aibroker_auth_refused_total", {"reason": reason})
    return found or 0.0


async def refusals(served: Served, claimed: str) -> list[dict[str, Any]]:
    async with served.admin() as admin:
        answer = await admin.get(
            "/admin/v1/audit", params={"action": "auth.refused", "claimed_subject": claimed}
        )
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


async def test_an_alg_that_does_not_fit_its_key_is_a_401_audited_and_counted(
    mixed: tuple[Served, LocalIssuer],
) -> None:
    """ES256 naming the RSA key and RS256 naming the EC key (both allowed by default, both
    kids public in the JWKS) used to crash PyJWT with a TypeError: a reset connection, no 401,
    no audit entry, no count."""
    served, issuer = mixed
    tenant = await served.tenant()
    rsa_kid, ec_kid = list(issuer.keys)
    assert (await answer_to(served, issuer.token(tenant, kid=rsa_kid)))[0] == 200
    assert (await answer_to(served, issuer.token(tenant, kid=ec_kid)))[0] == 200
    before = refused_count("token_refused")
    crafted = {
        "ES256 naming the RSA key": issuer.token(
            tenant, sub="mallory-es", kid=rsa_kid, alg="ES256", key=new_key("P-256")
        ),
        "RS256 naming the EC key": issuer.token(
            tenant, sub="mallory-rs", kid=ec_kid, alg="RS256", key=new_key("RSA")
        ),
    }
    for name, token in crafted.items():
        status, message = await answer_to(served, token)
        assert status == 401, name
        assert message.endswith("does not fit its signing key."), (name, message)
    assert refused_count("token_refused") == before + 2
    for sub in ("mallory-es", "mallory-rs"):
        found = await eventually(partial(refusals, served, f"jwt:{sub}"), what="audited")
        assert [(e["actor"], e["claimed_issuer"], e["detail"]["reason"]) for e in found] == [
            ("anonymous", issuer.issuer, "token_refused")
        ]


async def test_malformed_bearer_tokens_are_401_never_500(
    served: Served, issuer: LocalIssuer
) -> None:
    cases = malformed_tokens(issuer) | {
        "a megabyte of token": "eyJ" + "A" * 1_000_000 + ".e30.c2ln",
        "one segment": "eyJhbGciOiJSUzI1NiJ9",
        "empty segments": "ey..",
    }
    answers = {name: (await answer_to(served, token))[0] for name, token in cases.items()}
    assert answers == dict.fromkeys(cases, 401)
