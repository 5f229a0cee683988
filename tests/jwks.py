"""A local OIDC issuer for the tests: signing keys it generates (RSA by default; EC and Ed25519
beside them on request), its JWKS served over HTTP, and tokens signed with them (or, to prove
refusals, with what an attacker would use); and, for a browser, an authorization endpoint and a
token endpoint for the code flow with PKCE, signing in whoever comes with the claims it is
given."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from aibroker.devstack.embedded import free_port
from aibroker.settings import JwtIssuer

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

CURVES: dict[str, ec.EllipticCurve] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


def new_key(kind: str = "RSA") -> PrivateKey:
    """`RSA`, an EC curve (`P-256`, `P-384`, `P-521`) or `Ed25519`."""
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "Ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(CURVES[kind])


def default_alg(key: PrivateKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[key.curve.name]
    return "EdDSA"


def public_jwk(key: PrivateKey) -> dict[str, Any]:
    """The public half as a JWK (`kty`, and `crv` for EC and OKP), without `kid` or `alg`."""
    if isinstance(key, rsa.RSAPrivateKey):
        found = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        found = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        found = jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return dict(found)


class LocalIssuer:
    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/"
        self.audience = "aibroker-tests"
        self.keys: dict[str, PrivateKey] = {}
        self.algs: dict[str, str | None] = {}
        """The `alg` each key's JWK names (None: the JWK names none)."""
        self.kid = self.rotate()
        self.fetches = 0
        self.login: dict[str, Any] = {"sub": "user-1"}
        """The claims its sign-in page grants whoever comes (`tenant`, `roles`, `sub`): no form."""
        self.codes: dict[str, dict[str, str]] = {}
        """Authorization codes not yet exchanged: what each was issued for."""
        self.exchanged = 0

    def rotate(self, kind: str = "RSA", *, jwk_alg: str | None = "default") -> str:
        """A new signing key, published beside the old ones; tokens are signed with it. Its JWK
        names `jwk_alg` (`default`: the key's usual algorithm; None: no `alg` at all)."""
        kid = uuid.uuid4().hex[:8]
        self.keys[kid] = new_key(kind)
        self.algs[kid] = default_alg(self.keys[kid]) if jwk_alg == "default" else jwk_alg
        self.kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            alg = self.algs[kid]
            keys.append(
                public_jwk(key) | {"kid": kid, "use": "sig"} | ({"alg": alg} if alg else {})
            )
        return {"keys": keys}

    def config(self, **overrides: Any) -> JwtIssuer:
        options: dict[str, Any] = {"algorithms": ["RS256"], "leeway_s": 5} | overrides
        return JwtIssuer(
            issuer=self.issuer,
            jwks_url=f"{self.issuer}jwks.json",
            audience=self.audience,
            **options,
        )

    def token(
        self,
        tenant: str | None,
        sub: str = "user-1",
        *,
        kid: str | None = None,
        alg: str | None = None,
        key: PrivateKey | None = None,
        **claims: Any,
    ) -> str:
        """Claims of `tenant` signed with the key `kid` names (default: the newest), with `alg`
        (default: the key's own), or with `key` instead (a forgery naming `kid`)."""
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
        kid = kid or self.kid
        signer = key or self.keys[kid]
        alg = alg or self.algs[kid] or default_alg(signer)
        return jwt.encode(body, signer, algorithm=alg, headers={"kid": kid})

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[LocalIssuer]:
        async def jwks(_: web.Request) -> web.Response:
            self.fetches += 1
            return web.json_response(self.jwks())

        app = web.Application()
        app.router.add_get("/jwks.json", jwks)
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        try:
            yield self
        finally:
            await runner.cleanup()

    # An authorization server for a browser's code flow with PKCE (RFC 7636), S256 only.
    # Discovery and the token endpoint answer any origin (CORS), as a SPA's issuer does.

    async def _discovery(self, _: web.Request) -> web.Response:
        doc = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}authorize",
            "token_endpoint": f"{self.issuer}token",
            "jwks_uri": f"{self.issuer}jwks.json",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        }
        return web.json_response(doc, headers=CORS)

    async def _authorize(self, request: web.Request) -> web.Response:
        asked = request.query
        if asked.get("response_type") != "code" or asked.get("code_challenge_method") != "S256":
            return web.json_response({"error": "unsupported_response_type"}, status=400)
        if asked.get("client_id") != self.audience or not asked.get("code_challenge"):
            return web.json_response({"error": "invalid_request"}, status=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "challenge": asked["code_challenge"],
            "redirect_uri": asked.get("redirect_uri", ""),
            "nonce": asked.get("nonce", ""),
        }
        back = f"{asked.get('redirect_uri', '')}?code={code}&state={asked.get('state', '')}"
        raise web.HTTPFound(back)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        issued = self.codes.pop(str(form.get("code", "")), None)  # a code is used once
        verifier = str(form.get("code_verifier", ""))
        proof = segment(hashlib.sha256(verifier.encode()).digest())
        if (
            issued is None
            or form.get("grant_type") != "authorization_code"
            or form.get("client_id") != self.audience
            or form.get("redirect_uri") != issued["redirect_uri"]
            or proof != issued["challenge"]
        ):
            return web.json_response({"error": "invalid_grant"}, status=400, headers=CORS)
        self.exchanged += 1
        claims = dict(self.login)
        tenant, sub = claims.pop("tenant", None), str(claims.pop("sub", "user-1"))
        id_token = self.token(tenant, sub, nonce=issued["nonce"], **claims)
        body = {"id_token": id_token, "token_type": "Bearer", "expires_in": 300}
        return web.json_response(body, headers=CORS)


CORS = {"Access-Control-Allow-Origin": "*"}

SIGNERS = jwt.algorithms.get_default_algorithms()


def segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def as_json(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode()  # 1e400 travels as `Infinity`


def build(header: object, claims: object, sign_with: PrivateKey | None, garbage: bytes) -> str:
    """A token of any header and claims, signed for real when `sign_with` can make its `alg`."""
    signing_input = f"{segment(as_json(header))}.{segment(as_json(claims))}"
    alg = header.get("alg") if isinstance(header, dict) else None
    signature = garbage
    if sign_with is not None and isinstance(alg, str) and alg in SIGNERS:
        # A key that cannot make this signature leaves the garbage.
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            signature = SIGNERS[alg].sign(signing_input.encode(), sign_with)
    return f"{signing_input}.{segment(signature)}"


def malformed_tokens(issuer: LocalIssuer) -> dict[str, str]:
    """The shapes the issue names: forged ones (what anyone can send), and claims of the wrong
    type signed for real (as if the issuer had signed them), which only claim checks stop."""
    kid = issuer.kid
    key, stranger = issuer.keys[kid], new_key("RSA")
    base = {"iss": issuer.issuer, "aud": issuer.audience, "sub": "u", "exp": 4_000_000_000}
    header = {"alg": "RS256", "kid": kid}

    def signed(**claims: object) -> str:
        return build(header, base | claims, key, b"")

    def forged(**claims: object) -> str:
        return build(header, base | claims, stranger, b"")

    deep = "[" * 3000 + "]" * 3000
    deep_header = ('{"alg": "RS256", "a": ' + deep + "}").encode()
    return {
        "malformed base64": "eyJhbGciOiJSUzI1NiJ9.!!!not-base64!!!.c2ln",
        "base64 of nothing JSON": f"eyJ{segment(b'garbage')}.{segment(b'{}')}.c2ln",
        "header not JSON": f"{segment(b'{nope')}.{segment(b'{}')}.c2ln",
        "header a list": f"{segment(b'[1]')}.{segment(b'{}')}.c2ln",
        "header nested deep": f"{segment(deep_header)}.e30.c2ln",
        "claims nested deep": f"{segment(as_json(header))}.{segment(deep.encode())}.c2ln",
        "huge kid": build({"alg": "RS256", "kid": "k" * 6000}, base, stranger, b""),
        "huge claims": forged(pad="p" * 6000),
        "nested claims": forged(nest={"a": {"b": {"c": [1, {"d": None}]}}}),
        "sub a number": signed(sub=12345),
        "sub an object": signed(sub={"id": "u"}),
        "iss a list": signed(iss=[issuer.issuer]),
        "forged, iss a list": forged(iss=[issuer.issuer]),
        "exp a string": signed(exp="tomorrow"),
        "exp past a float": signed(exp=float("inf")),
        "forged, exp past a float": forged(exp=float("inf")),
        "exp NaN": signed(exp=float("nan")),
        "iat past a float": signed(iat=float("inf")),
        "roles a number": signed(roles=7, tenant="t1"),
        "roles an object": signed(roles={"admin": True}, tenant="t1"),
        "tenant an object": signed(tenant={"id": "t1"}, roles=["tenant_admin"]),
        "a wrong alg for the key": build({"alg": "ES256", "kid": kid}, base, new_key("P-256"), b""),
    }
