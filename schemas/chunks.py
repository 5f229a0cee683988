"""OpenAI chat streaming formats: chunks joined into the complete completion, and back."""

from __future__ import annotations

from typing import Any


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Join `chat.completion.chunk`s into one `chat.completion`: content and refusal text
    concatenated, tool calls joined by index, the last finish reason, usage and service tier
    kept."""
    choices: dict[int, dict[str, Any]] = {}
    head: dict[str, Any] = {}
    usage = None
    for chunk in chunks:
        head = head or chunk
        usage = chunk.get("usage") or usage
        for part in chunk.get("choices") or []:
            choice = choices.setdefault(
                part.get("index", 0),
                {
                    "index": part.get("index", 0),
                    "finish_reason": None,
                    "message": {"role": "assistant", "content": None},
                },
            )
            _merge_delta(choice["message"], part.get("delta") or {})
            if part.get("finish_reason"):
                choice["finish_reason"] = part["finish_reason"]
    done: dict[str, Any] = {
        "id": head.get("id"),
        "object": "chat.completion",
        "created": head.get("created"),
        "model": head.get("model"),
        "choices": [choices[i] for i in sorted(choices)],
    }
    if usage is not None:
        done["usage"] = usage
    if isinstance(head.get("service_tier"), str):  # the tier served: what the call bills at
        done["service_tier"] = head["service_tier"]
    return done


def _merge_delta(message: dict[str, Any], delta: dict[str, Any]) -> None:
    for key in ("content", "refusal"):
        if delta.get(key) is not None:
            message[key] = (message.get(key) or "") + delta[key]
    if delta.get("role"):
        message["role"] = delta["role"]
    for call in delta.get("tool_calls") or []:
        calls = message.setdefault("tool_calls", [])
        index = call.get("index", len(calls))
        while len(calls) <= index:
            calls.append(
                {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
            )
        target = calls[index]
        target["id"] = call.get("id") or target["id"]
        target["type"] = call.get("type") or target["type"]
        function = call.get("function") or {}
        target["function"]["name"] += function.get("name") or ""
        target["function"]["arguments"] += function.get("arguments") or ""


def as_chunk(completion: dict[str, Any]) -> dict[str, Any]:
    """A complete answer as a single chunk (for a stream whose work was already done)."""
    return {
        "id": completion.get("id"),
        "object": "chat.completion.chunk",
        "created": completion.get("created"),
        "model": completion.get("model"),
        "choices": [
            {
                "index": c.get("index", 0),
                "delta": c.get("message", {}),
                "finish_reason": c.get("finish_reason"),
            }
            for c in completion.get("choices", [])
        ],
        **({"usage": completion["usage"]} if completion.get("usage") else {}),
    }
