"""The mock provider's Gemini API (`POST /v1[beta]/models/{model}:generateContent` and
`:streamGenerateContent?alt=sse`), in Gemini's REST wire format: camelCase, `parts`, function
calls, `google.rpc` error bodies with `RetryInfo`. The answer echoes the last user turn (text,
then a note per inline image or function response); a function is called when
`toolConfig` forces one (`ANY`) or the last user text starts with `call `; JSON mode answers
`{"echo": ...}`. Faults come from the model name, as for the OpenAI API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


PROTO_FIELDS = {
    "inline_data", "mime_type", "file_data", "file_uri", "function_call", "function_response",
    "system_instruction", "generation_config", "tool_config", "function_calling_config",
    "allowed_function_names", "function_declarations", "parameters_json_schema",
    "response_mime_type", "response_json_schema", "candidate_count", "max_output_tokens",
    "stop_sequences", "top_p", "presence_penalty", "frequency_penalty",
}  # fmt: skip
"""Request fields the mock reads, by their proto names."""


def camel_case(value: Any) -> Any:
    """Protobuf JSON accepts a field by its proto name or in lowerCamelCase (SDKs send
    both): the request with the fields the mock reads in lowerCamelCase."""
    if isinstance(value, list):
        return [camel_case(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in PROTO_FIELDS:
            head, *rest = key.split("_")
            key = head + "".join(word.title() for word in rest)
        out[key] = camel_case(item) if key not in ("args", "response") else item
    return out


def error_body(status: int, message: str | None = None, retry_s: float | None = None) -> Any:
    error: dict[str, Any] = {
        "code": status,
        "message": message or f"mock {STATUSES.get(status, 'UNKNOWN')}",
        "status": STATUSES.get(status, "UNKNOWN"),
    }
    if retry_s is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_s}s"}
        ]
    return {"error": error}


def invalid(body: dict[str, Any]) -> str | None:
    contents = body.get("contents")
    if not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            return f"* GenerateContentRequest.contents[{i}].role: must be user or model"
        if not content.get("parts"):
            return f"* GenerateContentRequest.contents[{i}].parts: must not be empty"
    return None


def _last_user_text(body: dict[str, Any]) -> str:
    users = [c for c in body["contents"] if c.get("role") == "user"]
    turn: dict[str, Any] = users[-1] if users else {"parts": []}
    said = []
    for part in turn["parts"]:
        if "text" in part:
            said.append(part["text"])
        elif "inlineData" in part:
            said.append(f"[image {part['inlineData'].get('mimeType')}]")
        elif "functionResponse" in part:
            response = part["functionResponse"]
            said.append(f"[tool {response.get('name')} said {response.get('response')}]")
    return " ".join(said)


def _function_to_call(body: dict[str, Any], text: str) -> str | None:
    declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations", [])]
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if not declarations or config.get("mode") == "NONE":
        return None
    if config.get("mode") == "ANY":
        allowed = config.get("allowedFunctionNames") or [declarations[0]["name"]]
        return str(allowed[0])
    return str(declarations[0]["name"]) if text.startswith("call ") else None


def answer(body: dict[str, Any]) -> dict[str, Any]:
    text = _last_user_text(body)
    generation = body.get("generationConfig") or {}
    function = _function_to_call(body, text)
    if function is not None:
        part: dict[str, Any] = {"functionCall": {"name": function, "args": {"echo": text}}}
    elif generation.get("responseMimeType") == "application/json":
        part = {"text": orjson.dumps({"echo": text}).decode()}
    else:
        part = {"text": f"echo: {text}"}
    count = int(generation.get("candidateCount") or 1)
    prompt = sum(len(str(c.get("parts"))) for c in body["contents"]) // 8
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": i}
            for i in range(count)
        ],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": 3 * count,
            "totalTokenCount": prompt + 3 * count,
        },
        "modelVersion": "mock-gemini",
        "responseId": "mock-response",
    }


async def stream(body: dict[str, Any], breaks_after: int | None) -> AsyncIterator[bytes]:
    """`answer` in pieces, as `alt=sse` sends it; `breaks_after` words in, the stream ends
    without a finish reason (a dropped connection)."""
    done = answer(body)
    part = done["candidates"][0]["content"]["parts"][0]
    pieces: list[dict[str, Any]]
    if "text" in part:
        words = part["text"].split(" ")
        pieces = [{"text": (" " if i else "") + w} for i, w in enumerate(words)]
    else:
        pieces = [part]
    for i, piece in enumerate(pieces):
        if breaks_after is not None and i >= breaks_after:
            return
        last = i == len(pieces) - 1
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [piece]}, "index": 0}
        response: dict[str, Any] = {"candidates": [candidate], "modelVersion": "mock-gemini"}
        if last:
            candidate["finishReason"] = "STOP"
            response["usageMetadata"] = done["usageMetadata"]
        yield b"data: " + orjson.dumps(response) + b"\r\n\r\n"
