"""Refuse request bodies over the limit with 413 before they are buffered whole."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aibroker.errors import PayloadTooLarge
from ingress.errors import error_response


class BodyLimit:
    """By Content-Length up front; while streaming for chunked bodies (the route's error
    handlers turn the raised 413 into an OpenAI-style body)."""

    def __init__(self, app: ASGIApp, max_bytes: int, paths: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths or {}
        """Limits of their own for some paths (file uploads)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope["path"], self.max_bytes)
        message = f"Request body exceeds the limit of {limit} bytes."
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await error_response(PayloadTooLarge(message))(scope, receive, send)
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            received = await receive()
            if received["type"] == "http.request":
                seen += len(received.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, detail=message)
            return received

        await self.app(scope, limited_receive, send)
