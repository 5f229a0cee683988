"""The mock provider's OpenAI wire format: the chat answer (an echo of the last user message,
a tool call, JSON mode), its streamed form, the Responses API's answer, and OpenAI-style error
bodies."""

from __future__ import annotations

import asyncio
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


def flex_unavailable() -> dict[str, Any]:
    """OpenAI's answer (429) when flex capacity is short: retryable, without a Retry-After."""
    message = "Resource unavailable: flex capacity is short right now, retry later"
    return {
        "error": {
            "message": message,
            "type": "rate_limit_error",
            "code": "resource_unavailable",
            "param": None,
        }
    }


def _said(messages: list[dict[str, Any]]) -> str:
    """What the answer echoes: the last user message, or the tool result that ends the chat."""
    if messages and messages[-1].get("role") == "tool":
        return f"[tool {messages[-1].get('tool_call_id')} said {messages[-1].get('content')}]"
    last: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = last.get("content")
    return content if isinstance(content, str) else orjson.dumps(content).decode()


def tool_to_call(tools: list[dict[str, Any]], choice: Any, text: str) -> str | None:
    """The name of the function to call: one `tool_choice` forces (`required` or by name), or
    the first when the text starts with `call `; None for a plain answer."""
    names = [t.get("name") or (t.get("function") or {}).get("name") for t in tools]
    if not names or choice == "none":
        return None
    if isinstance(choice, dict):
        named = choice.get("name") or (choice.get("function") or {}).get("name")
        return str(named) if named in names else None
    if choice == "required" or text.startswith("call "):
        return str(names[0])
    return None


def _message(body: dict[str, Any], text: str) -> tuple[dict[str, Any], str]:
    """The assistant message and finish reason: an echo (`{"echo": ...}` in JSON mode), a
    call of a tool with `{"echo": ...}` as its arguments, or one word when
    `max_completion_tokens` is 1 (finish reason `length`)."""
    answer = f"echo: {text}"
    if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        answer = orjson.dumps({"echo": text}).decode()
    if (name := tool_to_call(body.get("tools") or [], body.get("tool_choice"), text)) is not None:
        arguments = orjson.dumps({"echo": text}).decode()
        function = {"name": name, "arguments": arguments}
        call: dict[str, Any] = {"id": _call_id(), "type": "function", "function": function}
        return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    if body.get("max_completion_tokens") == 1:
        return {"role": "assistant", "content": answer.split()[0]}, "length"
    return {"role": "assistant", "content": answer}, "stop"


def completion(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages") or []
    text = _said(messages)
    message, finish = _message(body, text)
    answer = message.get("content") or ""
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
    completion_tokens = len(answer.split())
    answered: dict[str, Any] = {
        "id": f"chatcmpl-mock{random.getrandbits(48):012x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "mock"),
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    if isinstance(body.get("service_tier"), str):  # the tier served is the one asked for
        answered["service_tier"] = body["service_tier"]
    return answered


async def stream(body: dict[str, Any], wants: dict[str, str]) -> AsyncIterator[bytes]:
    """The same answer as `completion`, word by word, in OpenAI's streaming wire format;
    `breaks-N` ends the stream with an error event after N words."""
    done = completion(body)
    head = {
        "id": done["id"],
        "object": "chat.completion.chunk",
        "created": done["created"],
        "model": done["model"],
    } | ({"service_tier": done["service_tier"]} if "service_tier" in done else {})
    message = done["choices"][0]["message"]
    words = (message["content"] or "").split(" ")
    pieces = [{"role": "assistant", "content": ""}] + [
        {"content": (" " if i else "") + word} for i, word in enumerate(words)
    ]
    if message.get("tool_calls"):  # a tool call comes whole, in one piece
        calls = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
        pieces = [{"role": "assistant", "content": None, "tool_calls": calls}]
    for i, delta in enumerate(pieces):
        if "breaks" in wants and i > int(wants["breaks"] or 1):
            error = {"message": "The server had an error mid-stream", "type": "server_error"}
            yield b"data: " + orjson.dumps({"error": error}) + b"\n\n"
            return
        if "pace" in wants and i:
            await asyncio.sleep(int(wants["pace"] or 100) / 1000)
        chunk = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    finish = done["choices"][0]["finish_reason"]
    last = {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    yield b"data: " + orjson.dumps(last) + b"\n\n"
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {**head, "choices": [], "usage": done["usage"]}
        yield b"data: " + orjson.dumps(usage) + b"\n\n"
    yield b"data: [DONE]\n\n"


def _call_id() -> str:
    return f"call_mock{random.getrandbits(40):010x}"


def _input_said(given: str | list[dict[str, Any]]) -> str:
    """What a Responses answer echoes: the input string, the last user message's text, or the
    function output that ends the input."""
    if isinstance(given, str):
        return given
    if given and given[-1].get("type") == "function_call_output":
        return f"[tool {given[-1].get('call_id')} said {given[-1].get('output')}]"
    user: dict[str, Any] = next((i for i in reversed(given) if i.get("role") == "user"), {})
    content = user.get("content")
    if isinstance(content, str):
        return content
    parts = [p for p in content or [] if isinstance(p, dict)]
    return " ".join(p.get("text") or f"[image {p.get('image_url')}]" for p in parts)


def response(body: dict[str, Any]) -> dict[str, Any]:
    """`POST /v1/responses`, as the mock's chat answers: an echo, a function call, JSON."""
    text = _input_said(body.get("input") or "")
    answer = f"echo: {text}"
    form = ((body.get("text") or {}).get("format") or {}).get("type")
    if form in ("json_object", "json_schema"):
        answer = orjson.dumps({"echo": text}).decode()
    name = tool_to_call(body.get("tools") or [], body.get("tool_choice"), text)
    suffix = f"{random.getrandbits(48):012x}"
    output: dict[str, Any] = {
        "type": "message",
        "id": f"msg_mock{suffix}",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": answer, "annotations": []}],
    }
    if name is not None:
        output = {
            "type": "function_call",
            "id": f"fc_mock{suffix}",
            "call_id": _call_id(),
            "name": name,
            "arguments": orjson.dumps({"echo": text}).decode(),
            "status": "completed",
        }
    input_tokens = len(orjson.dumps(body.get("input"))) // 8 + 1
    output_tokens = len(answer.split())
    return {
        "id": f"resp_mock{suffix}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": body.get("model", "mock"),
        "output": [output],
        "instructions": body.get("instructions"),
        "tools": body.get("tools") or [],
        "tool_choice": body.get("tool_choice", "auto"),
        "parallel_tool_calls": True,
        "text": body.get("text") or {"format": {"type": "text"}},
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }


def _sse(event: dict[str, Any]) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


async def response_events(body: dict[str, Any], wants: dict[str, str]) -> AsyncIterator[bytes]:
    """`POST /v1/responses` with `stream: true`: the same answer as `response`, as OpenAI's
    typed events (numbered from 0 by the mock itself; its text word by word, a function call's
    arguments whole); `breaks-N` ends the stream with an `error` event after N words."""
    done = response(body)
    seq = iter(range(1_000_000))

    def event(kind: str, **fields: Any) -> bytes:
        return _sse({"type": kind, "sequence_number": next(seq), **fields})

    running = {**done, "status": "in_progress", "output": [], "usage": None}
    yield event("response.created", response=running)
    yield event("response.in_progress", response=running)
    for index, item in enumerate(done["output"]):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "function_call":
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            yield event("response.function_call_arguments.delta", **where, delta=item["arguments"])
            yield event(
                "response.function_call_arguments.done", **where, arguments=item["arguments"]
            )
        else:
            text = item["content"][0]["text"]
            empty = {"type": "output_text", "text": "", "annotations": []}
            added = {**item, "status": "in_progress", "content": []}
            yield event("response.output_item.added", output_index=index, item=added)
            yield event("response.content_part.added", **where, content_index=0, part=empty)
            for i, word in enumerate(text.split(" ")):
                if "breaks" in wants and i >= int(wants["breaks"] or 1):
                    yield event("error", code="server_error", message="mock broke mid-stream")
                    return
                if "pace" in wants:
                    await asyncio.sleep(int(wants["pace"] or 100) / 1000)
                delta = (" " if i else "") + word
                yield event(
                    "response.output_text.delta", **where, content_index=0, delta=delta, logprobs=[]
                )
            yield event(
                "response.output_text.done", **where, content_index=0, text=text, logprobs=[]
            )
            yield event(
                "response.content_part.done", **where, content_index=0, part=item["content"][0]
            )
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.completed", response=done)
