"""A mock provider speaking the OpenAI, Anthropic and Gemini APIs, with faults on demand.

The answer echoes the last user message. Faults, per request through the upstream model
name (`mock/echo`, `mock/fail-500`, `mock/fail-429`, `mock/fail-400`, `mock/hang`,
`mock/latency-200`, `mock/breaks-3` (a stream that fails after 3 words), `mock/pace-100`
(a stream's words 100 ms apart), combinable with
`+`: `mock/latency-100+fail-503`), or for every
request through `POST /_control` (`{"latency_ms", "error_rate", "error_status",
"retry_after", "hang", "flex_unavailable"}`). `GET /_stats` counts the calls it received (and
those in flight), `GET /_history` lists them (time, model, last message).
Its OpenAI wire format is in `loadtest/mock_openai.py`. It also speaks Anthropic's Messages
API (`POST /v1/messages`, `loadtest/mock_anthropic.py`), OpenAI's Responses API (`POST
/v1/responses`: the chat answers and faults), and Gemini's `generateContent`
(`POST /v1[beta]/models/{model}:generateContent`, `loadtest/mock_gemini.py`), and both APIs'
embeddings (`POST /v1/embeddings`, `{model}:embedContent`, `{model}:batchEmbedContents`:
`loadtest/mock_embeddings.py`).
`GET /_last/{openai,anthropic,gemini}` returns the last body each API received.

    python -m loadtest.mock_provider --port 8090 --latency-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from loadtest import mock_anthropic as anthropic
from loadtest import mock_batches, mock_embeddings, mock_moderations
from loadtest import mock_gemini as gemini_api
from loadtest import mock_openai as openai


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    retry_after: float | None = None
    hang: bool = False
    flex_unavailable: int = 0
    """Answer this many chat calls asking for `service_tier: "flex"` with OpenAI's 429
    `resource_unavailable` (flex capacity short), then serve them."""


@dataclass
class MockState:
    faults: Faults = field(default_factory=Faults)
    calls: int = 0
    in_flight: int = 0
    """Calls sleeping in their latency or hang right now (a fault's in-flight work)."""
    calls_by_model: dict[str, int] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)
    """The last request body received, by API (`GET /_last/anthropic`)."""
    history: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=100_000))
    """(time, model, last message's text) of every call, for tests that check when each
    request reached the provider (`GET /_history`)."""


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(doc), status_code=status, media_type="application/json", headers=headers
    )


def _directives(model: str) -> dict[str, str]:
    out = {}
    for part in model.split("+"):
        name, _, arg = part.partition("-")
        out[name] = arg
    return out


class MockProvider:
    """One mock server: its faults, what it received, and one handler per API route."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.state = MockState(faults or Faults())

    def record(self, api: str, model: str, body: dict[str, Any]) -> None:
        self.state.last[api] = body
        self.state.calls += 1
        self.state.calls_by_model[model] = self.state.calls_by_model.get(model, 0) + 1
        messages = body.get("messages") or body.get("contents") or [{"content": body.get("input")}]
        text = messages[-1].get("content") if isinstance(messages[-1], dict) else None
        self.state.history.append((time.time(), model, text if isinstance(text, str) else ""))

    async def misbehave(self, wants: dict[str, str]) -> int | None:
        """The model's directives and the `/_control` faults, for every API alike: latency
        and hangs applied here; the error status to answer with, if any."""
        f = self.state.faults
        latency = float(wants.get("latency") or f.latency_ms)
        self.state.in_flight += 1
        try:
            if latency:
                await asyncio.sleep(latency / 1000)
            if "hang" in wants or f.hang:
                await asyncio.sleep(3600)
        finally:
            self.state.in_flight -= 1
        if "fail" in wants:
            return int(wants["fail"] or 500)
        if f.error_rate and random.random() < f.error_rate:
            return f.error_status
        return None

    async def chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        model = str(body.get("model", ""))
        self.record("openai", model, body)
        wants = _directives(model)
        if (status := await self.misbehave(wants)) is not None:
            retry = (
                (self.state.faults.retry_after or 1)
                if "fail" in wants
                else self.state.faults.retry_after
            )
            return _openai_error(status, retry)
        if body.get("service_tier") == "flex" and self.state.faults.flex_unavailable > 0:
            self.state.faults.flex_unavailable -= 1
            return _json(openai.flex_unavailable(), 429)
        if body.get("stream"):
            return StreamingResponse(openai.stream(body, wants), media_type="text/event-stream")
        return _json(openai.completion(body))

    async def responses(self, request: Request) -> Response:
        """OpenAI's Responses API (`loadtest/mock_openai.py` `response`), with the same faults
        as chat; `GET /_last/responses` returns the last body."""
        body = orjson.loads(await request.body())
        model = str(body.get("model", ""))
        self.record("responses", model, body)
        wants = _directives(model)
        if (status := await self.misbehave(wants)) is not None:
            retry = self.state.faults.retry_after or (1 if "fail" in wants else None)
            return _openai_error(status, retry)
        if body.get("background"):
            refused = {"message": "not served by the mock", "type": "invalid_request_error"}
            return _json({"error": refused}, 400)
        if body.get("stream"):
            events = openai.response_events(body, wants)
            return StreamingResponse(events, media_type="text/event-stream")
        return _json(openai.response(body))

    async def embeddings(self, request: Request) -> Response:
        """OpenAI's embeddings (see `loadtest/mock_embeddings.py`)."""
        return await self._texts_in(
            request, mock_embeddings.openai_texts, mock_embeddings.openai_answer
        )

    async def moderations(self, request: Request) -> Response:
        """OpenAI's moderations (see `loadtest/mock_moderations.py`)."""
        return await self._texts_in(request, mock_moderations.texts_of, mock_moderations.answer)

    async def _texts_in(
        self,
        request: Request,
        texts_of: Callable[[dict[str, Any]], list[str] | None],
        answer: Callable[[dict[str, Any], list[str]], dict[str, Any]],
    ) -> Response:
        """An OpenAI endpoint that takes texts in `input` (its calls logged as one message, its
        faults as chat's): 400 without them, else `answer`."""
        body = orjson.loads(await request.body())
        model = str(body.get("model", ""))
        texts = texts_of(body)
        self.record("openai", model, {"messages": [{"content": " ".join(texts or [])}]})
        wants = _directives(model)
        if (status := await self.misbehave(wants)) is not None:
            return _openai_error(
                status, self.state.faults.retry_after or (1 if "fail" in wants else None)
            )
        if texts is None:
            return _json(
                {"error": {"message": "input is required", "type": "invalid_request_error"}}, 400
            )
        return _json(answer(body, texts))

    async def messages(self, request: Request) -> Response:
        """Anthropic's Messages API (see `loadtest/mock_anthropic.py`)."""
        body = orjson.loads(await request.body())
        model = str(body.get("model", ""))
        self.record("anthropic", model, body)
        if not (request.headers.get("x-api-key") or request.headers.get("authorization")):
            return _json(anthropic.error_body(401, "x-api-key header is required"), 401)
        wants = _directives(model)
        if (status := await self.misbehave(wants)) is not None:
            retry = self.state.faults.retry_after or (1 if status in (429, 529) else None)
            headers = anthropic.error_headers(status, retry)
            return _json(anthropic.error_body(status), status, headers)
        problem = anthropic.invalid(body)
        if problem:
            return _json(anthropic.error_body(400, problem), 400)
        if body.get("stream"):
            breaks = int(wants["breaks"] or 1) if "breaks" in wants else None
            return StreamingResponse(anthropic.stream(body, breaks), media_type="text/event-stream")
        return _json(anthropic.answer(body))

    async def gemini(self, request: Request) -> Response:
        """Gemini's generateContent (see `loadtest/mock_gemini.py`)."""
        model, _, method = request.path_params["target"].partition(":")
        body = gemini_api.camel_case(orjson.loads(await request.body()))
        embedding = method in ("embedContent", "batchEmbedContents")
        if embedding:
            inputs = mock_embeddings.gemini_requests(body, method)
            text = " ".join(mock_embeddings.gemini_text(r) for r in inputs)
            self.record("gemini", model, {**body, "contents": [{"content": text}]})
        else:
            self.record("gemini", model, body)
        if not (request.headers.get("x-goog-api-key") or request.query_params.get("key")):
            refused = gemini_api.error_body(403, "Method doesn't allow unregistered callers")
            return _json(refused, 403)
        wants = _directives(model)
        if (status := await self.misbehave(wants)) is not None:
            retry = self.state.faults.retry_after or (1.0 if status in (429, 503) else None)
            return _json(gemini_api.error_body(status, retry_s=retry), status)
        if embedding:
            return _json(mock_embeddings.gemini_answer(inputs, method))
        problem = gemini_api.invalid(body)
        if problem:
            return _json(gemini_api.error_body(400, problem), 400)
        if method == "streamGenerateContent":
            breaks = int(wants["breaks"] or 1) if "breaks" in wants else None
            return StreamingResponse(
                gemini_api.stream(body, breaks), media_type="text/event-stream"
            )
        if method != "generateContent":
            return _json(gemini_api.error_body(404, f"method {method} not found"), 404)
        return _json(gemini_api.answer(body))

    async def last(self, request: Request) -> Response:
        return _json(self.state.last.get(request.path_params["api"]))

    async def models(self, _: Request) -> Response:
        return _json(
            {
                "object": "list",
                "data": [{"id": "echo", "object": "model", "created": 0, "owned_by": "mock"}],
            }
        )

    async def control(self, request: Request) -> Response:
        self.state.faults = Faults(**orjson.loads(await request.body()))
        return _json(vars(self.state.faults))

    async def history(self, _: Request) -> Response:
        calls = [{"at": at, "model": m, "text": text} for at, m, text in self.state.history]
        return _json({"calls": calls})

    async def stats(self, _: Request) -> Response:
        return _json(
            {
                "calls": self.state.calls,
                "in_flight": self.state.in_flight,
                "calls_by_model": self.state.calls_by_model,
            }
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                *mock_batches.MockBatches().routes(),  # first: Gemini's are under /v1beta/models
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                Route("/v1/moderations", self.moderations, methods=["POST"]),
                Route("/v1/responses", self.responses, methods=["POST"]),
                Route("/v1/messages", self.messages, methods=["POST"]),
                Route("/v1/models/{target}", self.gemini, methods=["POST"]),
                Route("/v1beta/models/{target}", self.gemini, methods=["POST"]),
                Route("/_last/{api}", self.last),
                Route("/v1/models", self.models),
                Route("/_control", self.control, methods=["POST"]),
                Route("/_stats", self.stats),
                Route("/_history", self.history),
            ]
        )


def create_app(faults: Faults | None = None) -> Starlette:
    return MockProvider(faults).app()


def _openai_error(status: int, retry_after: float | None) -> Response:
    body, headers = openai.error(status, retry_after)
    return _json(body, status, headers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(Faults(latency_ms=args.latency_ms)),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        # A call held by a latency or hang fault must not hold the process when it is told
        # to stop (uvicorn otherwise waits for every request to finish).
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
