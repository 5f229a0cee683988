"""The console's Content-Security-Policy and what its OIDC sign-in is told of each issuer."""

from __future__ import annotations

import pytest

from aibroker.settings import JwtIssuer
from ingress.caller_api import sign_in_issuer
from ingress.console_app import content_security_policy

pytestmark = pytest.mark.unit


def issuer(url: str) -> JwtIssuer:
    return JwtIssuer(issuer=url, jwks_url=f"{url}/jwks", audience="console-client")


def test_the_console_connects_to_itself_and_to_the_trusted_issuers_only() -> None:
    alone = content_security_policy([])
    assert "connect-src 'self';" in alone
    assert "frame-ancestors 'none'" in alone
    assert "script-src" not in alone  # default-src 'self': only the console's own scripts
    both = content_security_policy(
        [issuer("https://login.example.com/tenant/v2.0"), issuer("https://login.example.com/b")]
    )
    assert "connect-src 'self' https://login.example.com;" in both  # an origin, once


def test_the_sign_in_names_the_audience_as_client_and_the_discovery_document() -> None:
    found = sign_in_issuer(issuer("https://idp.example.com/realms/ops/"))
    assert found == {
        "issuer": "https://idp.example.com/realms/ops/",
        "client_id": "console-client",
        "discovery_url": "https://idp.example.com/realms/ops/.well-known/openid-configuration",
    }
