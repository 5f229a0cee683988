"""The mock provider's Anthropic Messages API (`POST /v1/messages`), in Anthropic's wire
format: content blocks, tool use, `event:`-typed server-sent events, its error bodies and
rate-limit headers. The answer echoes the last user turn (text, then a note per image or
tool result); a tool is called when `tool_choice` forces one, or when the last user text
starts with `call `. Faults come from the model name, as for the OpenAI API."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from typing import Any

import orjson

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message or f"mock {kind}"}}


def error_headers(status: int, retry_after: float | None) -> dict[str, str]:
    headers = {"request-id": f"req_mock{random.getrandbits(40):010x}"}
    if status == 429:
        headers |= {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
        }
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return headers


def invalid(body: dict[str, Any]) -> str | None:
    """What the real API would refuse with a 400, as far as the mock checks."""
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not messages:
        return "messages: at least one message is required"
    if messages[0].get("role") != "user":
        return 'messages: first message must use the "user" role'
    for before, after in itertools.pairwise(messages):
        if before.get("role") == after.get("role"):
            return 'messages: roles must alternate between "user" and "assistant"'
    return None


def _last_user_text(body: dict[str, Any]) -> str:
    turn: dict[str, Any] = next(
        (m for m in reversed(body["messages"]) if m.get("role") == "user"), {}
    )
    content = turn.get("content")
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if block.get("type") == "text":
            parts.append(block["text"])
        elif block.get("type") == "image":
            source = block.get("source") or {}
            parts.append(f"[image {source.get('media_type') or source.get('url')}]")
        elif block.get("type") == "tool_result":
            parts.append(f"[tool {block.get('tool_use_id')} said {block.get('content')}]")
    return " ".join(parts)


def _tool_to_call(body: dict[str, Any], text: str) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if not tools or choice.get("type") == "none":
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if t["name"] == choice.get("name")), None)
    if choice.get("type") == "any" or text.startswith("call "):
        return tools[0]  # type: ignore[no-any-return]
    return None


def answer(body: dict[str, Any]) -> dict[str, Any]:
    text = _last_user_text(body)
    tool = _tool_to_call(body, text)
    if tool is not None:
        block = {
            "type": "tool_use",
            "id": f"toolu_mock{random.getrandbits(40):010x}",
            "name": tool["name"],
            "input": {"echo": text},
        }
        content, stop = [block], "tool_use"
    else:
        content, stop = [{"type": "text", "text": f"echo: {text}"}], "end_turn"
    words = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
    return {
        "id": f"msg_mock{random.getrandbits(48):012x}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": words,
            "output_tokens": len(orjson.dumps(content)) // 8,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


async def stream(body: dict[str, Any], breaks_after: int | None) -> AsyncIterator[bytes]:
    """`answer` as Anthropic streams it; `breaks_after` words in, an `overloaded_error`."""
    done = answer(body)
    start = {**done, "content": [], "stop_reason": None}
    start["usage"] = {**done["usage"], "output_tokens": 1}
    yield _event("message_start", {"message": start})
    yield _event("ping", {})
    block = done["content"][0]
    if block["type"] == "text":
        yield _event(
            "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
        )
        for i, word in enumerate(block["text"].split(" ")):
            if breaks_after is not None and i >= breaks_after:
                yield _event("error", {"error": error_body(529, "Overloaded")["error"]})
                return
            delta = {"type": "text_delta", "text": (" " if i else "") + word}
            yield _event("content_block_delta", {"index": 0, "delta": delta})
    else:
        head = {**block, "input": {}}
        yield _event("content_block_start", {"index": 0, "content_block": head})
        arguments = orjson.dumps(block["input"]).decode()
        for piece in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield _event("content_block_delta", {"index": 0, "delta": delta})
    yield _event("content_block_stop", {"index": 0})
    ending = {"stop_reason": done["stop_reason"], "stop_sequence": None}
    usage = {"output_tokens": done["usage"]["output_tokens"]}
    yield _event("message_delta", {"delta": ending, "usage": usage})
    yield _event("message_stop", {})
