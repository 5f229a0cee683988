"""The identity settings: the bootstrap admin key (`AIBROKER_ADMIN_*`) and who else may call
(`AIBROKER_AUTH_*`): JWT issuers, direct producers' secrets, the audit of refusals."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aibroker.settings.base import SettingsGroup

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Signature algorithms a JWT issuer may use: public-key ones only. `none` and HMAC (whose
key would be the issuer's public key: the `alg` confusion attack) are refused."""


class JwtIssuer(BaseModel):
    """One OIDC issuer whose tokens are accepted as bearer credentials."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    issuer: str
    """The `iss` its tokens carry (exactly)."""
    jwks_url: str
    """Where its signing keys are published (fetched, cached, refetched on an unknown `kid`)."""
    audience: str
    """The `aud` a token must carry to be accepted here."""
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    """Signature algorithms accepted from it (public-key ones only)."""
    leeway_s: float = 30.0
    """Clock skew allowed on `exp`, `nbf` and `iat`."""
    tenant_claim: str = "tenant"
    """The claim that names the caller's tenant."""
    user_claim: str = "sub"
    """The claim that names the end user (carried on usage and audit records)."""
    roles_claim: str = "roles"
    """The claim listing admin roles (`admin`, `tenant_admin`, `viewer`); others are ignored."""
    jwks_ttl_s: float = 600.0
    """How long fetched keys are trusted before the JWKS is fetched again."""
    jwks_refetch_s: float = 10.0
    """A token naming an unknown `kid` fetches the JWKS again at most this often (random kids
    must not turn into a flood of fetches)."""

    @field_validator("algorithms")
    @classmethod
    def _public_key_only(cls, algorithms: list[str]) -> list[str]:
        refused = [a for a in algorithms if a not in ASYMMETRIC]
        if refused or not algorithms:
            raise ValueError(f"only public-key algorithms ({sorted(ASYMMETRIC)}), not {refused}")
        return algorithms


class AdminSettings(SettingsGroup):
    api_key: str | None = None
    """The bootstrap admin key: an `admin` on the admin API (`/admin/v1/...`), besides keys
    and tokens with roles. `aibroker dev` sets a random one and prints it."""


class AuthSettings(SettingsGroup):
    jwt_issuers: list[JwtIssuer] = Field(default_factory=list)
    """OIDC issuers whose JWTs are accepted beside API keys, as JSON: `[{"issuer",
    "jwks_url", "audience", "algorithms", "tenant_claim", "user_claim", "roles_claim"}]`."""
    refusals_window_s: float = 10.0
    """Refused authentications are written to the audit log once per key prefix (or token
    subject), source and reason per window, with their count: a flood stays one entry."""
    rotation_grace_s: float = 86400.0
    """How long a rotated key keeps working unless the rotation names its own grace."""
    producer_secrets: dict[str, str] = Field(default_factory=dict)
    """Direct producers: each tenant's secret (JSON `{"tenant": "secret"}`) that signs its
    envelopes (HMAC-SHA256 in the `aib-signature` header); see docs/guides/identity.md."""
    require_signed_envelopes: bool = False
    """Refuse (DLQ `unauthenticated`, audited) every envelope on a requests topic that is not
    signed by ingress or by its tenant's producer secret."""
    envelope_secret: str | None = None
    """The secret ingress and the batch runner sign their envelopes with, so the dispatcher
    can tell them from direct producers (set the same value on every service)."""
