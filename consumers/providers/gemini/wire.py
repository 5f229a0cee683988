"""OpenAI chat requests to Gemini's `generateContent` and its answers back, as pure functions.

The request side is built in Gemini's REST shape (camelCase), which the `google-genai` SDK
accepts as is; answers are read from the SDK's `model_dump()` (snake_case). Gemini takes
images inline only, so an image URL that is not a `data:` URL is refused by name; tool calls
get OpenAI ids (`call_<n>`), and a tool result finds its function's name through them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
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

PASSED = {"model", "messages", "stream", "stream_options", "user"}
"""Read by the translation itself (`user` has no Gemini counterpart and changes nothing)."""
CONFIG = {
    "temperature": "temperature",
    "top_p": "topP",
    "seed": "seed",
    "n": "candidateCount",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
UNSUPPORTED = {
    "logit_bias": "logit_bias",
    "audio": "audio output",
    "modalities": "other output modalities",
    "prediction": "predicted outputs",
    "functions": "legacy function calling (use tools)",
    "function_call": "legacy function calling (use tool_choice)",
    "logprobs": "logprobs",
    "top_logprobs": "logprobs",
}
FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


def to_generate_content(body: dict[str, Any], *, drop_unsupported: bool) -> dict[str, Any]:
    """`{"contents": [...], "config": {...}}` for `client.aio.models.generate_content`."""
    system, contents = _conversation(body.get("messages") or [])
    config: dict[str, Any] = {}
    if system:
        config["systemInstruction"] = {"parts": [{"text": system}]}
    for name, value in body.items():
        if value is None or name in PASSED:
            continue
        if name in CONFIG:
            config[CONFIG[name]] = value
        elif name in ("max_tokens", "max_completion_tokens"):
            config["maxOutputTokens"] = value
        elif name == "stop":
            config["stopSequences"] = stop_list(value)
        elif name == "tools":
            config["tools"] = [
                {"functionDeclarations": [_function(t, i) for i, t in enumerate(value)]}
            ]
        elif name == "tool_choice":
            config["toolConfig"] = {"functionCallingConfig": _tool_choice(value)}
        elif name == "parallel_tool_calls":
            continue  # Gemini decides how many calls to make; nothing to translate
        elif name == "response_format":
            config |= _json_mode(value)
        elif name in UNSUPPORTED:
            why = f"{name}: Gemini does not support {UNSUPPORTED[name]}"
            refuse(name, why, drop=drop_unsupported)
        else:
            refuse(name, f"{name}: unknown parameter '{name}'", drop=drop_unsupported)
    return {"contents": contents, "config": config}


def _conversation(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id → function name
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(plain_text(message.get("content"), i, "Gemini"))
            continue
        if role == "user":
            gemini_role, parts = "user", _parts(message.get("content"), i)
        elif role == "assistant":
            gemini_role = "model"
            parts = _parts(message.get("content"), i)
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                names[str(call.get("id"))] = str(function.get("name"))
                arguments = call_arguments(call, i)
                parts.append({"functionCall": {"name": function.get("name"), "args": arguments}})
        elif role == "tool":
            call_id = str(message.get("tool_call_id"))
            if call_id not in names:
                raise InvalidRequest(
                    f"messages[{i}]: tool_call_id '{call_id}' answers no earlier tool call",
                    param=f"messages[{i}].tool_call_id",
                )
            result = {"content": plain_text(message.get("content"), i, "Gemini")}
            gemini_role = "user"
            parts = [{"functionResponse": {"name": names[call_id], "response": result}}]
        else:
            raise InvalidRequest(
                f"messages[{i}]: role '{role}' is not supported by Gemini",
                param=f"messages[{i}].role",
            )
        append_turn(contents, gemini_role, "parts", parts)
    return "\n\n".join(s for s in system if s), contents


def _parts(content: object, i: int) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"text": content}]
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type") if isinstance(part, dict) else None
        where = f"messages[{i}].content[{j}]"
        if kind == "text":
            parts.append({"text": str(part.get("text", ""))})
        elif kind == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            header, sep, data = url.partition(",")
            if not (url.startswith("data:") and sep and header.endswith(";base64")):
                raise InvalidRequest(
                    f"{where}: Gemini takes images inline; send a base64 data URL",
                    param=f"{where}.image_url",
                )
            mime = header.removeprefix("data:").removesuffix(";base64")
            parts.append({"inlineData": {"mimeType": mime, "data": data}})
        else:
            raise InvalidRequest(
                f"{where}: content of type '{kind}' is not supported by Gemini",
                param=f"{where}.type",
            )
    return parts


def _function(tool: dict[str, Any], i: int) -> dict[str, Any]:
    function = function_of(tool, i)
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        out["parametersJsonSchema"] = function["parameters"]
    return out


def _tool_choice(choice: Any) -> dict[str, Any]:
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "required":
        return {"mode": "ANY"}
    if choice == "none":
        return {"mode": "NONE"}
    if isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        return {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    raise InvalidRequest("tool_choice is not valid", param="tool_choice")


def _json_mode(response_format: Any) -> dict[str, Any]:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind in (None, "text"):
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if schema:
            config["responseJsonSchema"] = schema
        return config
    raise InvalidRequest(f"response_format type '{kind}' is not known", param="response_format")


def usage(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI usage from `usage_metadata`: thinking tokens count as completion tokens, the
    prompts of built-in tools (search, code execution) as prompt tokens (both are billed)."""
    m = metadata or {}
    prompt = int(m.get("prompt_token_count") or 0) + int(m.get("tool_use_prompt_token_count") or 0)
    completion = int(m.get("candidates_token_count") or 0) + int(m.get("thoughts_token_count") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": int(m.get("cached_content_token_count") or 0)},
    }


def _message(
    parts: Iterable[dict[str, Any]], first_call: int
) -> tuple[str | None, list[dict[str, Any]]]:
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts:
        if part.get("thought"):
            continue  # thinking summaries are not part of the answer
        if part.get("text") is not None:
            text.append(part["text"])
        elif part.get("function_call"):
            call = part["function_call"]
            calls.append(
                {
                    "id": call.get("id") or f"call_{first_call + len(calls)}",
                    "type": "function",
                    "function": {
                        "name": call.get("name"),
                        "arguments": orjson.dumps(call.get("args") or {}).decode(),
                    },
                }
            )
    return ("".join(text) if text else None), calls


def _finish(reason: str | None, calls: bool) -> str | None:
    if reason is None:
        return None
    if calls:
        return "tool_calls"
    return FINISH.get(reason, "stop")


def from_response(response: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI `chat.completion` for a `generateContent` answer (SDK `model_dump`)."""
    choices = []
    for position, candidate in enumerate(response.get("candidates") or []):
        content, calls = _message((candidate.get("content") or {}).get("parts") or [], 0)
        reply: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            reply["tool_calls"] = calls
        choices.append(
            {
                "index": candidate.get("index", position),
                "message": reply,
                "finish_reason": _finish(candidate.get("finish_reason") or "STOP", bool(calls)),
            }
        )
    return {
        "id": response.get("response_id") or f"gemini-{time.time_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.get("model_version") or model,
        "choices": choices,
        "usage": usage(response.get("usage_metadata")),
    }


@dataclass
class StreamTranslator:
    """Gemini stream responses (each a partial `generateContent` answer) in, OpenAI
    `chat.completion.chunk`s out."""

    model: str
    include_usage: bool
    id: str = field(default_factory=lambda: f"gemini-{time.time_ns()}")
    started: set[int] = field(default_factory=set)
    calls: dict[int, int] = field(default_factory=dict)
    """Tool calls sent so far, by choice."""
    usage: dict[str, Any] | None = None
    finished: bool = False

    def feed(self, response: dict[str, Any]) -> list[dict[str, Any]]:
        self.usage = response.get("usage_metadata") or self.usage
        chunks = []
        for position, candidate in enumerate(response.get("candidates") or []):
            index = candidate.get("index", position)
            parts = (candidate.get("content") or {}).get("parts") or []
            sent = self.calls.get(index, 0)
            content, calls = _message(parts, sent)
            delta: dict[str, Any] = {}
            if index not in self.started:
                self.started.add(index)
                delta["role"] = "assistant"
            if content is not None:
                delta["content"] = content
            if calls:
                delta["tool_calls"] = [{"index": sent + k, **c} for k, c in enumerate(calls)]
                self.calls[index] = sent + len(calls)
            reason = _finish(candidate.get("finish_reason"), self.calls.get(index, 0) > 0)
            self.finished = self.finished or reason is not None
            if delta or reason:
                chunks.append(self._chunk(index, delta, reason))
        return chunks

    def close(self) -> list[dict[str, Any]]:
        """What follows the last response: the usage chunk, if asked for."""
        if not self.include_usage:
            return []
        head = self._chunk(0, {}, None)
        return [{**head, "choices": [], "usage": usage(self.usage)}]

    def _chunk(self, index: int, delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": index, "delta": delta, "finish_reason": reason}],
        }
