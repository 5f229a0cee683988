"""JWT bearer tokens from configured OIDC issuers, verified with PyJWT against each issuer's
JWKS (fetched, cached, fetched again when a token names a `kid` not yet seen).

Only the issuer's own configuration is trusted: the token's `iss` picks the issuer, its `alg`
must be one the issuer allows (public-key only, so `none` and HMAC-with-the-public-key never
verify), and `exp`, `nbf`, `iss` and `aud` are enforced with the issuer's clock skew."""

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


class TokenRefused(Exception):
    """The token does not verify; the message says why (never echoing the token)."""

    def __init__(self, reason: str, subject: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.subject = subject


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
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK | None:
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
            document: dict[str, Any] = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("JWKS of %s not fetched (%r)", self._issuer.issuer, exc)
            self._fetched_at = (
                time.monotonic() - self._issuer.jwks_ttl_s + self._issuer.jwks_refetch_s
            )
            return  # the keys held keep verifying until the issuer answers again
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            if entry.get("use", "sig") != "sig" or "kid" not in entry:
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(entry)
            except jwt.PyJWTError as exc:
                log.warning("JWKS of %s: key %s skipped (%r)", self._issuer.issuer, entry, exc)
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
        except jwt.PyJWTError as exc:
            raise TokenRefused("The bearer token is not a well-formed JWT.", "jwt") from exc
        subject = str(unverified.get("sub", "?"))[:128]
        issuer = self._issuers.get(str(unverified.get("iss")))
        if issuer is None:
            raise TokenRefused("The token's issuer is not trusted here.", subject)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in issuer.algorithms:
            raise TokenRefused(f"The token's algorithm {alg!r} is not accepted.", subject)
        key = await self._jwks[issuer.issuer].key(str(kid)) if kid else None
        if key is None:
            raise TokenRefused("The token's signing key is unknown to its issuer.", subject)
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[str(alg)],
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=issuer.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRefused("The token has expired.", subject) from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenRefused("The token is not meant for this service (aud).", subject) from exc
        except jwt.PyJWTError as exc:
            raise TokenRefused(
                f"The token does not verify ({type(exc).__name__}).", subject
            ) from exc
        return _claims(issuer, claims)


def _claims(issuer: JwtIssuer, claims: dict[str, Any]) -> TokenClaims:
    roles = claims.get(issuer.roles_claim) or []
    if isinstance(roles, str):
        roles = roles.split()
    known = {r.value for r in Role}
    tenant, user = claims.get(issuer.tenant_claim), claims.get(issuer.user_claim)
    return TokenClaims(
        issuer=issuer.issuer,
        subject=str(claims["sub"]),
        tenant=str(tenant) if tenant else None,
        user=str(user) if user else None,
        roles=frozenset(Role(r) for r in roles if isinstance(r, str) and r in known),
    )
