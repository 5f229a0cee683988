"""The headers every answer carries, as OpenAI's API sends them: `x-request-id` (the broker
request's id where there is one, else one made for this call, refusals included) and
`openai-processing-ms` (the time until the answer's headers)."""

from __future__ import annotations

import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aibroker.ids import new_id


class ResponseHeaders:
    """Outermost middleware: it sees every answer, the body limit's 413s included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "x-request-id" not in headers:
                    headers["x-request-id"] = request_id
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers["openai-processing-ms"] = str(round(elapsed_ms))
            await send(message)

        await self.app(scope, receive, send_with_headers)
