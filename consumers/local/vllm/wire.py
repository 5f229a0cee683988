"""Pure mapping between OpenAI chat requests and vLLM: sampling options in, answers out.

Kept free of `vllm` imports so it is unit-tested everywhere; `consumers/local/vllm/engine.py`
feeds these values to the real engine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aibroker.errors import InvalidRequest
from consumers.chat_parts import refuse, stop_list

SAMPLING_FIELDS = {
    # OpenAI name → SamplingParams name
    "temperature": "temperature",
    "top_p": "top_p",
    "n": "n",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    # vLLM's extensions of the chat API, accepted as its own server accepts them
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "min_tokens": "min_tokens",
}
IGNORED = {"model", "messages", "stream", "stream_options", "user"}
"""Read elsewhere (`messages`, `stream`) or with no effect on generation (`user`)."""
UNSUPPORTED = {
    "tools": "tool calling",
    "tool_choice": "tool calling",
    "functions": "function calling",
    "function_call": "function calling",
    "logit_bias": "logit_bias",
    "logprobs": "logprobs",
    "top_logprobs": "logprobs",
    "audio": "audio output",
    "modalities": "other output modalities",
    "prediction": "predicted outputs",
    "parallel_tool_calls": "tool calling",
}


def sampling_options(body: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of `vllm.SamplingParams` for an OpenAI chat body. A parameter the
    engine cannot honour is refused with a 400 naming it, never silently dropped."""
    options: dict[str, Any] = {}
    for name, value in body.items():
        if value is None or name in IGNORED:
            continue
        if name in SAMPLING_FIELDS:
            options[SAMPLING_FIELDS[name]] = value
        elif name in ("max_tokens", "max_completion_tokens"):
            options["max_tokens"] = value
        elif name == "stop":
            options["stop"] = stop_list(value)
        elif name == "response_format":
            if not (isinstance(value, dict) and value.get("type") == "text"):
                why = "response_format other than text is not supported by this model's engine"
                refuse(name, why)
        elif name in UNSUPPORTED:
            refuse(name, f"{UNSUPPORTED[name]} is not supported by this model's engine")
        else:
            refuse(name, f"unknown parameter '{name}'")
    return options


def chat_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Messages for the model's chat template: text only, `developer` read as `system`."""
    shaped = []
    for i, message in enumerate(messages):
        role = "system" if message["role"] == "developer" else message["role"]
        if role not in ("system", "user", "assistant"):
            raise InvalidRequest(
                f"messages[{i}]: role '{role}' is not supported by this model's engine",
                param=f"messages[{i}].role",
            )
        shaped.append({"role": role, "content": _text(message.get("content"), i)})
    return shaped


def _text(content: object, i: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict) or part.get("type") != "text":
            raise InvalidRequest(
                f"messages[{i}]: only text content is supported by this model's engine",
                param=f"messages[{i}].content",
            )
        parts.append(str(part.get("text", "")))
    return "".join(parts)


@dataclass(frozen=True)
class Choice:
    """One finished or growing sequence, as the engine reports it (cumulative text)."""

    index: int
    text: str
    tokens: int
    finish_reason: str | None


FINISH_REASONS = {"stop": "stop", "length": "length", "abort": "stop"}


def chat_response(
    request_id: str, model: str, choices: Sequence[Choice], prompt_tokens: int
) -> dict[str, Any]:
    completion_tokens = sum(c.tokens for c in choices)
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": c.index,
                "message": {"role": "assistant", "content": c.text},
                "finish_reason": FINISH_REASONS.get(c.finish_reason or "", "stop"),
            }
            for c in choices
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def delta_chunk(
    request_id: str, model: str, choice: Choice, seen: int, *, first: bool
) -> dict[str, Any]:
    """A `chat.completion.chunk` carrying what `choice` gained after its first `seen`
    characters (the engine reports cumulative text)."""
    delta: dict[str, Any] = {"content": choice.text[seen:]}
    if first:
        delta["role"] = "assistant"
    reason = FINISH_REASONS.get(choice.finish_reason or "") if choice.finish_reason else None
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": choice.index, "delta": delta, "finish_reason": reason}],
    }


def usage_chunk(request_id: str, model: str, prompt: int, completion: int) -> dict[str, Any]:
    """The last chunk of a stream: no choices, the usage (as `include_usage` asks)."""
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
