"""The JWT verifier alone (its JWKS served in-process): every signature algorithm against every
kind of key, and fuzzed bearer tokens (malformed base64, huge or nested headers and claims,
claims of the wrong type, `exp` as a string or past a float). Whatever comes in, `verify`
answers claims or `TokenRefused`, never another exception (which would be a 500)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aibroker.settings.auth import ASYMMETRIC
from ingress.tokens import KEY_TYPES, Issuers, SigningKey, TokenClaims, TokenRefused, fits
from tests.jwks import LocalIssuer, PrivateKey, build, malformed_tokens, new_key, public_jwk

pytestmark = [pytest.mark.unit]

KINDS = ("RSA", "P-256", "P-384", "P-521", "Ed25519")


def signer_kind(alg: str) -> str:
    """The kind of key that can make an `alg` signature."""
    kty, curves = KEY_TYPES[alg]
    if kty == "EC":
        assert curves is not None
        return next(iter(curves))
    return "RSA" if kty == "RSA" else "Ed25519"


def local_issuer() -> LocalIssuer:
    """Keys of every kind, each published with and without its own `alg` in the JWK."""
    issuer = LocalIssuer()
    issuer.keys.clear()
    issuer.algs.clear()
    for kind in KINDS:
        issuer.rotate(kind)
        issuer.rotate(kind, jwk_alg=None)
    return issuer


def issuers_of(issuer: LocalIssuer, http: httpx.AsyncClient) -> Issuers:
    return Issuers([issuer.config(algorithms=sorted(ASYMMETRIC))], http)


def jwks_client(issuer: LocalIssuer) -> httpx.AsyncClient:
    document = issuer.jwks()
    return httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(200, json=document))
    )


@pytest.fixture(scope="module")
def issuer() -> LocalIssuer:
    return local_issuer()


@pytest.fixture
async def verifier(issuer: LocalIssuer) -> AsyncIterator[Issuers]:
    async with jwks_client(issuer) as http:
        yield issuers_of(issuer, http)


def jwk_key(issuer: LocalIssuer, kid: str) -> SigningKey:
    entry = next(k for k in issuer.jwks()["keys"] if k["kid"] == kid)
    return SigningKey(jwt.PyJWK(entry), entry["kty"], entry.get("crv"), entry.get("alg"))


def test_an_algorithm_fits_only_its_own_kind_of_key(issuer: LocalIssuer) -> None:
    rsa_named, rsa_bare, p256_named, p256_bare = list(issuer.keys)[:2] + list(issuer.keys)[2:4]
    assert fits("RS256", jwk_key(issuer, rsa_named))
    assert not fits("PS256", jwk_key(issuer, rsa_named))  # the JWK names RS256 alone
    assert fits("PS512", jwk_key(issuer, rsa_bare))
    assert not fits("ES256", jwk_key(issuer, rsa_bare))
    assert fits("ES256", jwk_key(issuer, p256_named))
    assert fits("ES256", jwk_key(issuer, p256_bare))
    assert not fits("ES384", jwk_key(issuer, p256_bare))  # another curve
    assert not fits("RS256", jwk_key(issuer, p256_bare))
    assert not fits("HS256", jwk_key(issuer, rsa_bare))


async def test_every_algorithm_against_every_key(issuer: LocalIssuer, verifier: Issuers) -> None:
    """A token naming a key is verified against it only when its `alg` fits the key; every
    other pairing is refused, none crashes (ES256 naming an RSA key used to raise TypeError)."""
    outcomes: dict[tuple[str, str], str] = {}
    for kid, own in issuer.keys.items():
        key = jwk_key(issuer, kid)
        for alg in sorted(ASYMMETRIC):
            # The issuer's own key where it can make this signature, else an attacker's.
            signer: PrivateKey = (
                own if signer_kind(alg) == _kind(own) else new_key(signer_kind(alg))
            )
            token = issuer.token("t1", kid=kid, alg=alg, key=signer)
            try:
                claims = await verifier.verify(token)
            except TokenRefused as refused:
                outcomes[(kid, alg)] = refused.reason
            else:
                assert claims.tenant == "t1"
                outcomes[(kid, alg)] = "ok"
            assert (outcomes[(kid, alg)] == "ok") == fits(alg, key), (kid, alg, outcomes)
    accepted = [pair for pair, outcome in outcomes.items() if outcome == "ok"]
    # Each named key accepts its one algorithm; a bare RSA key all six, each bare curve one.
    assert len(accepted) == len(KINDS) + 6 + 3 + 1


def _kind(key: PrivateKey) -> str:
    """One of KINDS: the key type, or the curve."""
    jwk = public_jwk(key)
    return "RSA" if jwk["kty"] == "RSA" else str(jwk["crv"])


LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=16)
)
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


@st.composite
def tokens(draw: st.DrawFn, issuer: LocalIssuer) -> str:
    kid = draw(st.sampled_from(sorted(issuer.keys)) | JSON)
    alg = draw(st.sampled_from([*sorted(ASYMMETRIC), "HS256", "none"]) | JSON)
    header = draw(st.dictionaries(st.sampled_from(["typ", "crit", "jku", "x5u"]), JSON))
    header |= {"alg": alg, "kid": kid}
    good: dict[str, object] = {
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "sub": "user-1",
        "exp": 4_000_000_000,
        "tenant": "t1",
    }
    drawn = draw(st.fixed_dictionaries({}, optional={k: JSON for k in [*good, "nbf", "iat"]}))
    claims = {k: v for k, v in good.items() if draw(st.booleans())} | drawn
    claims |= draw(st.fixed_dictionaries({}, optional={"roles": JSON}))
    sign_with = issuer.keys.get(kid) if isinstance(kid, str) else None
    garbage = draw(st.binary(max_size=64))
    token = build(header, claims, sign_with if draw(st.booleans()) else None, garbage)
    cut = draw(st.sampled_from(["whole", "bad base64", "truncated"]))
    if cut == "bad base64":
        at = draw(st.integers(min_value=2, max_value=len(token) - 1))
        token = token[:at] + draw(st.sampled_from(["!", "*", "==", "\u00e9", " "])) + token[at:]
    elif cut == "truncated":
        token = token[: draw(st.integers(min_value=2, max_value=len(token)))]
    return token


def test_fuzzed_tokens_are_claims_or_refused() -> None:
    issuer = local_issuer()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data: st.DataObject) -> None:
        token = data.draw(tokens(issuer))

        async def verify() -> TokenClaims | TokenRefused:
            async with jwks_client(issuer) as http:
                try:
                    return await issuers_of(issuer, http).verify(token)
                except TokenRefused as refused:
                    return refused

        outcome = asyncio.run(verify())
        assert isinstance(outcome, TokenClaims | TokenRefused)
        if isinstance(outcome, TokenClaims):
            assert isinstance(outcome.subject, str)
            assert outcome.tenant in (None, "t1")

    check()


@pytest.mark.parametrize("case", sorted(malformed_tokens(LocalIssuer())))
async def test_each_malformed_shape_is_refused(case: str) -> None:
    issuer = LocalIssuer()
    token = malformed_tokens(issuer)[case]
    async with jwks_client(issuer) as http:
        with pytest.raises(TokenRefused):
            await issuers_of(issuer, http).verify(token)
