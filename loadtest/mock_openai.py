"""The mock provider's OpenAI wire format: the chat answer (an echo of the last user message),
its streamed form, and OpenAI-style error bodies."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson


def error(status: int, retry_after: float | None) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The error body and headers of a fault with this status."""
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
    return {"error": {"message": message, "type": type_, "code": code, "param": None}}, headers


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
