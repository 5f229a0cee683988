"""JWT bearer tokens from configured OIDC issuers, verified with PyJWT against each issuer's
JWKS (fetched, cached, fetched again when a token names a `kid` not yet seen).

Only the issuer's own configuration is trusted: the token's `iss` picks the issuer, its `alg`
must be one the issuer allows (public-key only, so `none` and HMAC-with-the-public-key never
verify) and fit the key its `kid` names (`fits`), and `exp`, `nbf`, `iss` and `aud` are
enforced with the issuer's clock skew. Whatever fails, and however the library says so, the
token is refused (`TokenRefused`), never an error of the server."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from aibroker.identity import Role
from aibroker.settings.auth import JwtIssuer

log = logging.getLogger(__name__)


CLAIM_CHARS = 128
"""How much of a refused token's unverified `sub` and `iss` is kept for the audit log."""

KEY_TYPES: dict[str, tuple[str, frozenset[str] | None]] = {
    **{alg: ("RSA", None) for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
"""The key type (JWK `kty`) and curves (`crv`) each signature algorithm verifies with."""


class TokenRefused(Exception):
    """The token does not verify; the message says why (never echoing the token). What it
    claimed to be (`jwt:<sub>`, and its `iss`) is unverified: for the audit log's
    `claimed_subject`, never an actor."""

    def __init__(
        self, reason: str, claimed_subject: str | None = None, claimed_issuer: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.claimed_subject = claimed_subject
        self.claimed_issuer = claimed_issuer


@dataclass(frozen=True)
class SigningKey:
    """A key of an issuer's JWKS, with what the JWK says it is for."""

    key: jwt.PyJWK
    kty: str
    crv: str | None = None
    alg: str | None = None
    """The JWK's own `alg`, when it names one."""


def fits(alg: str, key: SigningKey) -> bool:
    """Whether a token signed with `alg` may be checked against `key`: the key's type and curve
    are the algorithm's, and the JWK's own `alg`, if any, is this one. (An ES256 token naming
    an RSA key used to crash PyJWT with a TypeError: a 500 for anyone who read the JWKS.)"""
    wanted = KEY_TYPES.get(alg)
    if wanted is None or (key.alg is not None and key.alg != alg):
        return False
    kty, curves = wanted
    return key.kty == kty and (curves is None or key.crv in curves)


@dataclass(frozen=True)
class TokenClaims:
    issuer: str
    subject: str
    tenant: str | None
    user: str | None
    roles: frozenset[Role]


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class _Jwks:
    """One issuer's signing keys by `kid`."""

    def __init__(self, issuer: JwtIssuer, http: httpx.AsyncClient) -> None:
        self._issuer = issuer
        self._http = http
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> SigningKey | None:
        age = time.monotonic() - self._fetched_at
        if kid not in self._keys or age > self._issuer.jwks_ttl_s:
            async with self._lock:
                age = time.monotonic() - self._fetched_at
                stale = age > self._issuer.jwks_ttl_s
                if stale or (kid not in self._keys and age > self._issuer.jwks_refetch_s):
                    await self._fetch()
        return self._keys.get(kid)

    async def _fetch(self) -> None:
        try:
            answer = await self._http.get(self._issuer.jwks_url)
            answer.raise_for_status()
            document: Any = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("JWKS of %s not fetched (%r)", self._issuer.issuer, exc)
            self._fetched_at = (
                time.monotonic() - self._issuer.jwks_ttl_s + self._issuer.jwks_refetch_s
            )
            return  # the keys held keep verifying until the issuer answers again
        entries = document.get("keys") if isinstance(document, dict) else None
        keys: dict[str, SigningKey] = {}
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            if not isinstance(entry.get("kid"), str) or not isinstance(entry.get("kty"), str):
                continue
            try:
                key = jwt.PyJWK(entry)
            except Exception as exc:  # PyJWT raises more than PyJWTError on a bad JWK
                log.warning("JWKS of %s: key %s skipped (%r)", self._issuer.issuer, entry, exc)
                continue
            crv, alg = entry.get("crv"), entry.get("alg")
            keys[entry["kid"]] = SigningKey(
                key,
                entry["kty"],
                crv if isinstance(crv, str) else None,
                alg if isinstance(alg, str) else None,
            )
        self._keys = keys
        self._fetched_at = time.monotonic()


class Issuers:
    """Verifies tokens of the configured issuers."""

    def __init__(self, issuers: list[JwtIssuer], http: httpx.AsyncClient) -> None:
        self._issuers = {i.issuer: i for i in issuers}
        self._jwks = {i.issuer: _Jwks(i, http) for i in issuers}

    def __bool__(self) -> bool:
        return bool(self._issuers)

    async def verify(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except Exception as exc:  # PyJWT raises more than PyJWTError on malformed input
            raise TokenRefused("The bearer token is not a well-formed JWT.") from exc
        iss = unverified.get("iss")
        claimed, claimed_issuer = _claimed(unverified.get("sub"), "jwt:"), _claimed(iss)
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise TokenRefused("The token's issuer is not trusted here.", claimed, claimed_issuer)
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in issuer.algorithms:
            shown = repr(alg)[:24]
            raise TokenRefused(
                f"The token's algorithm {shown} is not accepted.", claimed, claimed_issuer
            )
        key = await self._jwks[issuer.issuer].key(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenRefused(
                "The token's signing key is unknown to its issuer.", claimed, claimed_issuer
            )
        if not fits(alg, key):
            raise TokenRefused(
                f"The token's algorithm {alg!r} does not fit its signing key.",
                claimed,
                claimed_issuer,
            )
        try:
            claims = jwt.decode(
                token,
                key=key.key.key,
                algorithms=[alg],
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=issuer.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
            return _claims(issuer, claims)
        except jwt.ExpiredSignatureError as exc:
            raise TokenRefused("The token has expired.", claimed, claimed_issuer) from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenRefused(
                "The token is not meant for this service (aud).", claimed, claimed_issuer
            ) from exc
        except TokenRefused as refused:
            refused.claimed_subject, refused.claimed_issuer = claimed, claimed_issuer
            raise
        except Exception as exc:  # whatever the library raises, the token is refused
            raise TokenRefused(
                f"The token does not verify ({type(exc).__name__}).", claimed, claimed_issuer
            ) from exc


def _claimed(value: object, prefix: str = "") -> str | None:
    """What a token claimed, cut short, for the audit log (never trusted)."""
    return None if value is None else prefix + str(value)[:CLAIM_CHARS]


def _claims(issuer: JwtIssuer, claims: dict[str, Any]) -> TokenClaims:
    """The caller a verified token names: its subject, tenant and user claims strings, its
    roles a list of strings or one space-separated string (unknown roles are ignored)."""
    subject, tenant, user = (
        claims.get("sub"),
        claims.get(issuer.tenant_claim),
        claims.get(issuer.user_claim),
    )
    roles = claims.get(issuer.roles_claim) or []
    if isinstance(roles, str):
        roles = roles.split()
    if not isinstance(subject, str) or not subject:
        raise TokenRefused("The token's subject (sub) is not a string.")
    for name, value in ((issuer.tenant_claim, tenant), (issuer.user_claim, user)):
        if value is not None and not isinstance(value, str):
            raise TokenRefused(f"The token's claim {name!r} is not a string.")
    if not isinstance(roles, list):
        raise TokenRefused(f"The token's claim {issuer.roles_claim!r} is not a list of roles.")
    known = {r.value for r in Role}
    return TokenClaims(
        issuer=issuer.issuer,
        subject=subject,
        tenant=tenant or None,
        user=user or None,
        roles=frozenset(Role(r) for r in roles if isinstance(r, str) and r in known),
    )
