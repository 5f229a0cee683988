"""A mock provider speaking the OpenAI, Anthropic and Gemini APIs, with faults on demand.

The answer echoes the last user message. Faults, per request through the upstream model
name (`mock/echo`, `mock/fail-500`, `mock/fail-429`, `mock/fail-400`, `mock/hang`,
`mock/latency-200`, `mock/breaks-3` (a stream that fails after 3 words), combinable with
`+`: `mock/latency-100+fail-503`), or for every
request through `POST /_control` (`{"latency_ms", "error_rate", "error_status",
"retry_after", "hang"}`). `GET /_stats` counts the calls it received (and those in
flight), `GET /_history` lists them (time, model, last message).
It also speaks Anthropic's Messages API (`POST /v1/messages`, `loadtest/mock_anthropic.py`)
and Gemini's `generateContent` (`POST /v1[beta]/models/{model}:generateContent`,
`loadtest/mock_gemini.py`), and both APIs' embeddings (`POST /v1/embeddings`,
`{model}:embedContent`, `{model}:batchEmbedContents`: `loadtest/mock_embeddings.py`).
`GET /_last/{openai,anthropic,gemini}` returns the last body each API received.

    python -m loadtest.mock_provider --port 8090 --latency-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from loadtest import mock_anthropic as anthropic
from loadtest import mock_embeddings
from loadtest import mock_gemini as gemini_api


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    retry_after: float | None = None
    hang: bool = False


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


def _error(status: int, retry_after: float | None) -> Response:
    kinds = {
        429: ("rate_limit_exceeded", "Rate limit reached for requests"),
        400: ("invalid_value", "Invalid request (mock fault)"),
    }
    code, message = kinds.get(status, ("server_error", f"The server had an error (mock {status})"))
    type_ = (
        "invalid_request_error"
        if status == 400
        else ("rate_limit_error" if status == 429 else "server_error")
    )
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    return _json(
        {"error": {"message": message, "type": type_, "code": code, "param": None}}, status, headers
    )


def _directives(model: str) -> dict[str, str]:
    out = {}
    for part in model.split("+"):
        name, _, arg = part.partition("-")
        out[name] = arg
    return out


def completion(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages") or []
    last: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = last.get("content")
    text = content if isinstance(content, str) else orjson.dumps(content).decode()
    answer = f"echo: {text}"
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
    completion_tokens = len(answer.split())
    return {
        "id": f"chatcmpl-mock{random.getrandbits(48):012x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "mock"),
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": answer},
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


async def stream(body: dict[str, Any], wants: dict[str, str]) -> AsyncIterator[bytes]:
    """The same answer as `completion`, word by word, in OpenAI's streaming wire format;
    `breaks-N` ends the stream with an error event after N words."""
    done = completion(body)
    head = {
        "id": done["id"],
        "object": "chat.completion.chunk",
        "created": done["created"],
        "model": done["model"],
    }
    words = done["choices"][0]["message"]["content"].split(" ")
    pieces = [{"role": "assistant", "content": ""}] + [
        {"content": (" " if i else "") + word} for i, word in enumerate(words)
    ]
    for i, delta in enumerate(pieces):
        if "breaks" in wants and i > int(wants["breaks"] or 1):
            error = {"message": "The server had an error mid-stream", "type": "server_error"}
            yield b"data: " + orjson.dumps({"error": error}) + b"\n\n"
            return
        chunk = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    last = {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    yield b"data: " + orjson.dumps(last) + b"\n\n"
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {**head, "choices": [], "usage": done["usage"]}
        yield b"data: " + orjson.dumps(usage) + b"\n\n"
    yield b"data: [DONE]\n\n"


def create_app(faults: Faults | None = None) -> Starlette:
    state = MockState(faults or Faults())

    def record(api: str, model: str, body: dict[str, Any]) -> None:
        state.last[api] = body
        state.calls += 1
        state.calls_by_model[model] = state.calls_by_model.get(model, 0) + 1
        messages = body.get("messages") or body.get("contents") or [{}]
        text = messages[-1].get("content") if isinstance(messages[-1], dict) else None
        state.history.append((time.time(), model, text if isinstance(text, str) else ""))

    async def misbehave(wants: dict[str, str]) -> int | None:
        """The model's directives and the `/_control` faults, for every API alike: latency
        and hangs applied here; the error status to answer with, if any."""
        f = state.faults
        latency = float(wants.get("latency") or f.latency_ms)
        state.in_flight += 1
        try:
            if latency:
                await asyncio.sleep(latency / 1000)
            if "hang" in wants or f.hang:
                await asyncio.sleep(3600)
        finally:
            state.in_flight -= 1
        if "fail" in wants:
            return int(wants["fail"] or 500)
        if f.error_rate and random.random() < f.error_rate:
            return f.error_status
        return None

    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        model = str(body.get("model", ""))
        record("openai", model, body)
        wants = _directives(model)
        if (status := await misbehave(wants)) is not None:
            retry = (state.faults.retry_after or 1) if "fail" in wants else state.faults.retry_after
            return _error(status, retry)
        if body.get("stream"):
            return StreamingResponse(stream(body, wants), media_type="text/event-stream")
        return _json(completion(body))

    async def embeddings(request: Request) -> Response:
        """OpenAI's embeddings (see `loadtest/mock_embeddings.py`)."""
        body = orjson.loads(await request.body())
        model = str(body.get("model", ""))
        texts = mock_embeddings.openai_texts(body)
        record("openai", model, {"messages": [{"content": " ".join(texts or [])}]})
        wants = _directives(model)
        if (status := await misbehave(wants)) is not None:
            return _error(status, state.faults.retry_after or (1 if "fail" in wants else None))
        if texts is None:
            return _json(
                {"error": {"message": "input is required", "type": "invalid_request_error"}}, 400
            )
        return _json(mock_embeddings.openai_answer(body, texts))

    async def messages(request: Request) -> Response:
        """Anthropic's Messages API (see `loadtest/mock_anthropic.py`)."""
        body = orjson.loads(await request.body())
        model = str(body.get("model", ""))
        record("anthropic", model, body)
        if not (request.headers.get("x-api-key") or request.headers.get("authorization")):
            return _json(anthropic.error_body(401, "x-api-key header is required"), 401)
        wants = _directives(model)
        if (status := await misbehave(wants)) is not None:
            retry = state.faults.retry_after or (1 if status in (429, 529) else None)
            headers = anthropic.error_headers(status, retry)
            return _json(anthropic.error_body(status), status, headers)
        problem = anthropic.invalid(body)
        if problem:
            return _json(anthropic.error_body(400, problem), 400)
        if body.get("stream"):
            breaks = int(wants["breaks"] or 1) if "breaks" in wants else None
            return StreamingResponse(anthropic.stream(body, breaks), media_type="text/event-stream")
        return _json(anthropic.answer(body))

    async def gemini(request: Request) -> Response:
        """Gemini's generateContent (see `loadtest/mock_gemini.py`)."""
        model, _, method = request.path_params["target"].partition(":")
        body = gemini_api.camel_case(orjson.loads(await request.body()))
        embedding = method in ("embedContent", "batchEmbedContents")
        if embedding:
            inputs = mock_embeddings.gemini_requests(body, method)
            text = " ".join(mock_embeddings.gemini_text(r) for r in inputs)
            record("gemini", model, {**body, "contents": [{"content": text}]})
        else:
            record("gemini", model, body)
        if not (request.headers.get("x-goog-api-key") or request.query_params.get("key")):
            refused = gemini_api.error_body(403, "Method doesn't allow unregistered callers")
            return _json(refused, 403)
        wants = _directives(model)
        if (status := await misbehave(wants)) is not None:
            retry = state.faults.retry_after or (1.0 if status in (429, 503) else None)
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

    async def last(request: Request) -> Response:
        return _json(state.last.get(request.path_params["api"]))

    async def models(_: Request) -> Response:
        return _json(
            {
                "object": "list",
                "data": [{"id": "echo", "object": "model", "created": 0, "owned_by": "mock"}],
            }
        )

    async def control(request: Request) -> Response:
        state.faults = Faults(**orjson.loads(await request.body()))
        return _json(vars(state.faults))

    async def history(_: Request) -> Response:
        calls = [{"at": at, "model": m, "text": text} for at, m, text in state.history]
        return _json({"calls": calls})

    async def stats(_: Request) -> Response:
        return _json(
            {
                "calls": state.calls,
                "in_flight": state.in_flight,
                "calls_by_model": state.calls_by_model,
            }
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/models/{target}", gemini, methods=["POST"]),
            Route("/v1beta/models/{target}", gemini, methods=["POST"]),
            Route("/_last/{api}", last),
            Route("/v1/models", models),
            Route("/_control", control, methods=["POST"]),
            Route("/_stats", stats),
            Route("/_history", history),
        ]
    )


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
    )


if __name__ == "__main__":
    main()
