"""A local OIDC issuer for the tests: RSA signing keys it generates, its JWKS served over HTTP,
and tokens signed with them (or, to prove refusals, with what an attacker would use)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from aibroker.devstack.embedded import free_port
from aibroker.settings import JwtIssuer


class LocalIssuer:
    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/"
        self.audience = "aibroker-tests"
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.kid = self.rotate()
        self.fetches = 0

    def rotate(self) -> str:
        """A new signing key, published beside the old ones; tokens are signed with it."""
        kid = uuid.uuid4().hex[:8]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append(public | {"kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def config(self, **overrides: Any) -> JwtIssuer:
        return JwtIssuer(
            issuer=self.issuer,
            jwks_url=f"{self.issuer}jwks.json",
            audience=self.audience,
            algorithms=["RS256"],
            leeway_s=5,
            **overrides,
        )

    def token(self, tenant: str | None, sub: str = "user-1", **claims: Any) -> str:
        now = time.time()
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": int(now),
            "exp": int(now + 300),
        }
        if tenant is not None:
            body["tenant"] = tenant
        body.update(claims)
        return jwt.encode(body, self.keys[self.kid], algorithm="RS256", headers={"kid": self.kid})

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[LocalIssuer]:
        async def jwks(_: web.Request) -> web.Response:
            self.fetches += 1
            return web.json_response(self.jwks())

        app = web.Application()
        app.router.add_get("/jwks.json", jwks)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        try:
            yield self
        finally:
            await runner.cleanup()
