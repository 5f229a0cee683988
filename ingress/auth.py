"""Bearer API keys → the caller's tenant."""

from __future__ import annotations

from fastapi import Request

from aibroker.errors import AuthenticationError
from aibroker.keys import KeyInfo
from ingress.state import services


async def authenticate(request: Request) -> KeyInfo:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationError("Missing API key: send 'Authorization: Bearer aib_...'.")
    info = await services(request).keys.lookup(key.strip())
    if info is None:
        raise AuthenticationError("Incorrect API key provided.")
    return info
