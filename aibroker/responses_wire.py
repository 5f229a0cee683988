"""The Responses API over a chat API: a `/v1/responses` body as a chat completions body, a chat
completion as a Response object, and the Response object of a request that has not answered
(queued, running, failed, cancelled). Pure: every target without a `/v1/responses` of its own
(OpenAI-compatible chat servers, Anthropic, Gemini, local vLLM) is served through these, and
ingress runs `to_chat` at the door so that a field no chat API can honour is a 400 naming it
before anything is written.
"""

from __future__ import annotations

from typing import Any

from aibroker.errors import InvalidRequest
from schemas.openai import Usage

PASSED = ("temperature", "top_p", "parallel_tool_calls", "user", "service_tier")
"""Fields that mean the same in both APIs, sent to the chat API as they came."""
PASSED_CHAT = ("prompt_cache_key", "safety_identifier")
BROKER_FIELDS = (
    *("background", "store", "stream", "model", "input", "instructions", "metadata"),
    "previous_response_id",
)
"""Read by the broker itself (or translated below), never sent as they are (`metadata` is
kept on the Response object: a chat API stores it only with `store`; the previous response's
turns are in `input`, prepended at ingress)."""
TRANSLATED = ("max_output_tokens", "tools", "tool_choice", "text", "reasoning", "truncation")
NOT_BUILT = ("conversation", "prompt", "include", "top_logprobs")
"""Fields of the Responses API the broker does not serve yet (for any target): a 400."""
DEFAULT_TEXT: dict[str, Any] = {"format": {"type": "text"}}


def refuse(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_parameter")


def check_served(body: dict[str, Any]) -> None:
    """Refuse what no target is sent (whether it has a `/v1/responses` or not)."""
    for name in NOT_BUILT:
        if body.get(name) not in (None, [], ""):
            raise refuse(name, f"`{name}` is not supported by this broker yet.")
    if body.get("background") and body.get("store") is False:
        raise InvalidRequest(
            "Background responses must be stored: `background: true` needs `store: true`.",
            param="store",
        )


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat completions body that asks what a `/v1/responses` body asks; InvalidRequest
    (400) naming the first field a chat API cannot honour."""
    check_served(body)
    known = {*PASSED, *PASSED_CHAT, *BROKER_FIELDS, *TRANSLATED, *NOT_BUILT}
    for name in body:
        if name not in known:
            raise refuse(name, f"`{name}` is not supported for this model (served over chat).")
    chat: dict[str, Any] = {"model": body["model"], "messages": messages_of(body)}
    chat |= {k: body[k] for k in (*PASSED, *PASSED_CHAT) if body.get(k) is not None}
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        chat["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(body["tools"])]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if (text := body.get("text")) is not None:
        chat |= _text(text)
    if (reasoning := body.get("reasoning")) is not None:
        chat |= _reasoning(reasoning)
    if body.get("truncation") not in (None, "disabled"):
        raise refuse("truncation", "Only `truncation: disabled` is supported for this model.")
    return chat


def messages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """`instructions` as the system message, then the input: a string is one user message;
    items become messages, function calls join the assistant turn before them."""
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    given = body["input"]
    if isinstance(given, str):
        return [*messages, {"role": "user", "content": given}]
    for i, item in enumerate(given):
        _add_item(messages, item, f"input[{i}]")
    if not any(m["role"] != "system" for m in messages):
        raise refuse("input", "`input` holds no message for the model.")
    return messages


def _add_item(messages: list[dict[str, Any]], item: dict[str, Any], where: str) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        messages.append(_message(item, where))
    elif kind == "function_call":
        call = {
            "id": item.get("call_id") or item.get("id"),
            "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments", "")},
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        content = output if isinstance(output, str) else _text_of(output or [], where)
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": content})
    elif kind != "reasoning":  # a reasoning item carries nothing a chat API takes
        raise refuse(f"{where}.type", f"Input items of type `{kind}` are not supported here.")


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise refuse(f"{where}.role", f"Unknown role `{role}`.")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise refuse(f"{where}.content", "`content` must be a string or a list of parts.")
    if role == "assistant":
        return {"role": role, "content": _text_of(content, f"{where}.content")}
    parts = [_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)]
    return {"role": role, "content": parts}


def _part(part: dict[str, Any], where: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": part.get("text", "")}
    if kind == "input_image":
        if not part.get("image_url"):
            raise refuse(f"{where}.file_id", "Images are supported by `image_url` only here.")
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise refuse(f"{where}.type", f"Content parts of type `{kind}` are not supported here.")


def _text_of(parts: list[dict[str, Any]], where: str) -> str:
    texts = []
    for j, part in enumerate(parts):
        if part.get("type") not in ("input_text", "output_text", "text", "refusal"):
            raise refuse(f"{where}[{j}].type", "Only text parts are supported here.")
        texts.append(part.get("text") or part.get("refusal") or "")
    return "".join(texts)


def _tool(tool: dict[str, Any], where: str) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise refuse(f"{where}.type", f"Tools of type `{tool.get('type')}` are not supported here.")
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        return choice
    if choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise refuse("tool_choice", f"`tool_choice` of type `{choice.get('type')}` is not supported.")


def _text(text: dict[str, Any]) -> dict[str, Any]:
    extra = sorted(set(text) - {"format"})
    if extra:
        raise refuse(f"text.{extra[0]}", f"`text.{extra[0]}` is not supported for this model.")
    form = text.get("format") or {"type": "text"}
    kind = form.get("type")
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    if kind == "json_schema":
        keys = ("name", "schema", "strict", "description")
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {k: form[k] for k in keys if form.get(k) is not None},
            }
        }
    raise refuse("text.format.type", f"`text.format` of type `{kind}` is not supported.")


def _reasoning(reasoning: dict[str, Any]) -> dict[str, Any]:
    if reasoning.get("summary") is not None or reasoning.get("generate_summary") is not None:
        raise refuse("reasoning.summary", "Reasoning summaries are not supported for this model.")
    effort = reasoning.get("effort")
    return {} if effort is None else {"reasoning_effort": effort}


def shell(body: dict[str, Any], response_id: str, created_at: float, status: str) -> dict[str, Any]:
    """A Response object without output: what the request asked, echoed as OpenAI does."""
    text = body.get("text") or DEFAULT_TEXT
    reasoning = body.get("reasoning") or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(created_at),
        "status": status,
        "background": bool(body.get("background")),
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model"),
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store", True),
        "temperature": body.get("temperature"),
        "text": text,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p"),
        "truncation": body.get("truncation", "disabled"),
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""Chat finish reasons that leave a Response `incomplete`, and the reason it gives."""


def from_chat(
    chat: dict[str, Any], body: dict[str, Any], response_id: str, created_at: float
) -> dict[str, Any]:
    """The Response object of a chat completion: its message as an output message with
    `output_text`, its tool calls as `function_call` items, its usage in Responses terms;
    `incomplete` when the chat stopped at its token limit or a content filter."""
    response = shell(body, response_id, created_at, "completed")
    choices = chat.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    response["output"] = output_items(message, response_id)
    if chat.get("model"):
        response["model"] = chat["model"]
    if (reason := INCOMPLETE.get(choice.get("finish_reason") or "")) is not None:
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": reason}
    usage = chat.get("usage")
    if isinstance(usage, dict):
        response["usage"] = responses_usage(Usage.model_validate(usage))
    if chat.get("service_tier"):
        response["service_tier"] = chat["service_tier"]
    return response


def _suffix(response_id: str) -> str:
    return response_id.partition("_")[2] or response_id


def message_id(response_id: str) -> str:
    """The id of a response's output message (the same in its stream and in its result)."""
    return f"msg_{_suffix(response_id)}"


def output_items(message: dict[str, Any], response_id: str) -> list[dict[str, Any]]:
    """Ids derived from the response's, so a request redone after a crash answers the same."""
    suffix = _suffix(response_id)
    items: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "output_text", "text": message["content"], "annotations": []})
    if message.get("refusal"):
        content.append({"type": "refusal", "refusal": message["refusal"]})
    if content:
        items.append(
            {
                "type": "message",
                "id": message_id(response_id),
                "status": "completed",
                "role": "assistant",
                "content": content,
            }
        )
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        items.append(
            {
                "type": "function_call",
                "id": f"fc_{suffix}{i}",
                "call_id": call.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments") or "",
                "status": "completed",
            }
        )
    return items


def responses_usage(usage: Usage) -> dict[str, Any]:
    """Chat usage in Responses terms (cached prompt tokens and reasoning tokens kept)."""
    prompt = usage.model_extra.get("prompt_tokens_details") if usage.model_extra else None
    completion = usage.model_extra.get("completion_tokens_details") if usage.model_extra else None
    cached = (prompt or {}).get("cached_tokens") or 0
    reasoning = (completion or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
    }


def chat_usage(usage: dict[str, Any]) -> Usage:
    """A Response's usage in chat terms, for billing as chat is billed."""
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    return Usage.model_validate(
        {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": int(usage.get("total_tokens") or prompt + completion),
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
    )


PASSTHROUGH_DROPPED = ("background", "stream", "previous_response_id")
"""Fields the broker honours itself and never sends to a provider's own `/v1/responses`:
the broker is the background, the pool's call streams only when the pool relays it, and the
previous response (the broker's id) is already in `input`."""


def passthrough_body(
    body: dict[str, Any], upstream_model: str, *, stream: bool = False
) -> dict[str, Any]:
    """The body sent as is to a provider that serves `/v1/responses`, for its model name
    (`stream: true` when the pool relays the provider's events)."""
    sent = {k: v for k, v in body.items() if k not in PASSTHROUGH_DROPPED}
    return {**sent, "model": upstream_model} | ({"stream": True} if stream else {})


def from_passthrough(
    answer: dict[str, Any], body: dict[str, Any], response_id: str
) -> dict[str, Any]:
    """The provider's Response object, renamed to the broker's id (the one the client
    polls), with the request's own `background`."""
    return {
        **answer,
        "id": response_id,
        "background": bool(body.get("background")),
        "previous_response_id": body.get("previous_response_id"),
    }
