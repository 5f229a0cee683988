"""OpenAI chat requests to Anthropic's Messages API and its answers back, as pure functions.

What Anthropic cannot do is refused with a 400 naming the parameter (or dropped, where the
deployment allows it), never silently lost. `response_format` (JSON mode, JSON schema) is
translated into one forced tool whose input is the JSON answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from aibroker.errors import InvalidRequest
from consumers.chat_parts import (
    append_turn,
    call_arguments,
    function_of,
    plain_text,
    refuse,
    stop_list,
)
from schemas.envelopes import Kind, Request, Target

JSON_TOOL = "json_answer"
"""The forced tool that carries a `response_format` answer."""
PASSED = {"model", "messages", "stream", "stream_options"}
"""Read by the translation itself."""
UNSUPPORTED = {
    "seed": "seed",
    "logit_bias": "logit_bias",
    "logprobs": "logprobs",
    "top_logprobs": "logprobs",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "audio": "audio output",
    "modalities": "other output modalities",
    "prediction": "predicted outputs",
    "functions": "legacy function calling (use tools)",
    "function_call": "legacy function calling (use tool_choice)",
}
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
"""Anthropic's error types, for errors that arrive inside a 200 stream."""
VERSION = "2023-06-01"
"""The `anthropic-version` the Messages API is called with (as the SDK sends it)."""
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def messages_call(
    request: Request,
    target: Target,
    *,
    default_max_tokens: int,
    drop_unsupported: bool,
    stream: bool,
) -> dict[str, Any]:
    """The Messages API body of a chat request for `target`. A request of another kind is
    refused (ingress and the dispatcher refuse it first): the API has no endpoint for it."""
    if request.kind is not Kind.CHAT:
        raise InvalidRequest(
            f"provider '{target.provider}' speaks the Anthropic API, which has no "
            f"{request.kind.value} endpoint",
            param="model",
        )
    params = to_messages(
        request.body,
        target.model,
        default_max_tokens=default_max_tokens,
        drop_unsupported=drop_unsupported,
    )
    if stream:
        params["stream"] = True
    return params


def to_messages(
    body: dict[str, Any], model: str, *, default_max_tokens: int, drop_unsupported: bool
) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat body."""
    params: dict[str, Any] = {"model": model, "max_tokens": default_max_tokens}
    system, messages = _conversation(body.get("messages") or [])
    if system:
        params["system"] = system
    params["messages"] = messages
    for name, value in body.items():
        if value is not None and name not in PASSED:
            _parameter(name, value, params, drop=drop_unsupported)
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None:
        params["tool_choice"] = choice
    _json_mode(body.get("response_format"), params)
    return params


TRANSLATED: dict[str, Callable[[Any], tuple[str, Any]]] = {
    "max_tokens": lambda value: ("max_tokens", value),
    "max_completion_tokens": lambda value: ("max_tokens", value),
    "top_p": lambda value: ("top_p", value),
    "stop": lambda value: ("stop_sequences", stop_list(value)),
    "user": lambda value: ("metadata", {"user_id": value}),
    "tools": lambda value: ("tools", [_tool(t, i) for i, t in enumerate(value)]),
}
"""OpenAI parameters Anthropic has under another name or shape: name → (its name, value)."""
TOGETHER = frozenset({"tool_choice", "parallel_tool_calls", "response_format"})
"""Parameters read together after the loop (`_tool_choice`, `_json_mode`)."""


def _parameter(name: str, value: Any, params: dict[str, Any], *, drop: bool) -> None:
    """One OpenAI parameter into `params`, or refused (dropped, with `drop`)."""
    if name in TRANSLATED:
        key, translated = TRANSLATED[name](value)
        params[key] = translated
    elif name == "temperature":
        if value > 1:
            refuse(name, f"{name}: Anthropic takes a temperature between 0 and 1", drop=drop)
        else:
            params["temperature"] = value
    elif name == "n":
        if value != 1:
            refuse(name, f"{name}: Anthropic returns one choice (n must be 1)", drop=drop)
    elif name in TOGETHER:
        return
    elif name in UNSUPPORTED:
        refuse(name, f"{name}: Anthropic does not support {UNSUPPORTED[name]}", drop=drop)
    else:
        refuse(name, f"{name}: unknown parameter '{name}'", drop=drop)


def _conversation(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """System and developer messages joined into `system`; the rest as Anthropic turns,
    tool results as user turns, consecutive turns of one role merged."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(plain_text(message.get("content"), i, "Anthropic"))
            continue
        if role == "tool":
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.get("tool_call_id"),
                    "content": plain_text(message.get("content"), i, "Anthropic"),
                }
            ]
            role = "user"
        elif role == "user":
            blocks = _blocks(message.get("content"), i)
        elif role == "assistant":
            blocks = _blocks(message.get("content"), i) + [
                _tool_use(call, i) for call in message.get("tool_calls") or []
            ]
        else:
            raise InvalidRequest(
                f"messages[{i}]: role '{role}' is not supported by Anthropic",
                param=f"messages[{i}].role",
            )
        append_turn(turns, role, "content", blocks)
    return "\n\n".join(s for s in system if s), turns


def _blocks(content: object, i: int) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for j, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url") or {}, f"messages[{i}].content[{j}]"))
        else:
            raise InvalidRequest(
                f"messages[{i}].content[{j}]: content of type '{kind}' is not supported by "
                "Anthropic",
                param=f"messages[{i}].content[{j}].type",
            )
    return blocks


def _image(image: dict[str, Any], where: str) -> dict[str, Any]:
    url = str(image.get("url", ""))
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header.removeprefix("data:").removesuffix(";base64")
        if not header.endswith(";base64") or not media_type.startswith("image/"):
            raise InvalidRequest(f"{where}: image data URLs must be base64", param=where)
        source = {"type": "base64", "media_type": media_type, "data": data}
        return {"type": "image", "source": source}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest(f"{where}: image_url must be an http(s) or data URL", param=where)


def _tool_use(call: dict[str, Any], i: int) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": call.get("id"),
        "name": (call.get("function") or {}).get("name"),
        "input": call_arguments(call, i),
    }


def _tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    function = function_of(tool, i)
    out: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None and parallel is None:
        return None
    if choice is None or choice == "auto":
        out: dict[str, Any] = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise InvalidRequest("tool_choice is not valid", param="tool_choice")
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _json_mode(response_format: Any, params: dict[str, Any]) -> None:
    """JSON mode as a forced tool: its input schema is the requested one (any object for
    `json_object`), and its input comes back as the message content."""
    if not isinstance(response_format, dict) or response_format.get("type") in (None, "text"):
        return
    if params.get("tools"):
        raise InvalidRequest(
            "response_format cannot be combined with tools for Anthropic models",
            param="response_format",
        )
    kind = response_format.get("type")
    if kind == "json_object":
        schema: dict[str, Any] = {"type": "object"}
    elif kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
    else:
        raise InvalidRequest(f"response_format type '{kind}' is not known", param="response_format")
    params["tools"] = [
        {"name": JSON_TOOL, "description": "Give the answer as JSON.", "input_schema": schema}
    ]
    params["tool_choice"] = {"type": "tool", "name": JSON_TOOL}


def answered_json(params: dict[str, Any]) -> bool:
    """Whether the request asked for JSON (answered through the forced JSON tool)."""
    return bool((params.get("tool_choice") or {}).get("name") == JSON_TOOL)


def usage(anthropic_usage: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI usage: cache reads and writes count as prompt tokens, and are told apart in
    `prompt_tokens_details` (`cache_write_tokens` as OpenRouter names it): writes cost more."""
    u = anthropic_usage or {}
    cached = int(u.get("cache_read_input_tokens") or 0)
    written = int(u.get("cache_creation_input_tokens") or 0)
    prompt = int(u.get("input_tokens") or 0) + cached + written
    completion = int(u.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
    }


def from_message(message: dict[str, Any], json_mode: bool) -> dict[str, Any]:
    """An OpenAI `chat.completion` for a Messages API answer."""
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            if json_mode and block.get("name") == JSON_TOOL:
                text.append(orjson.dumps(block.get("input")).decode())
            else:
                calls.append(_call(block))
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        reply["tool_calls"] = calls
    reason = FINISH.get(message.get("stop_reason") or "", "stop")
    if json_mode and reason == "tool_calls" and not calls:
        reason = "stop"
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model"),
        "choices": [{"index": 0, "message": reply, "finish_reason": reason}],
        "usage": usage(message.get("usage")),
    }


def _call(block: dict[str, Any]) -> dict[str, Any]:
    arguments = orjson.dumps(block.get("input") or {}).decode()
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": arguments},
    }
