"""What every chat translation reads the same way from an OpenAI request: refusals,
`stop`, function tools, tool-call arguments, plain-text content, turns of one role merged."""

from __future__ import annotations

from typing import Any

import orjson

from aibroker.errors import InvalidRequest


def refuse(name: str, message: str, *, drop: bool = False) -> None:
    """A 400 naming the parameter a provider cannot honour (nothing, where dropping is
    allowed: the caller then leaves the parameter out)."""
    if not drop:
        raise InvalidRequest(message, param=name, code="unsupported_parameter")


def stop_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def function_of(tool: dict[str, Any], i: int) -> dict[str, Any]:
    """The `function` of `tools[i]`, which must be a named function tool."""
    function = tool.get("function") if tool.get("type") == "function" else None
    if not isinstance(function, dict) or not function.get("name"):
        raise InvalidRequest(f"tools[{i}] must be a function tool", param=f"tools[{i}]")
    return function


def call_arguments(call: dict[str, Any], i: int) -> Any:
    """The parsed JSON arguments of a tool call in `messages[i]`."""
    function = call.get("function") or {}
    try:
        return orjson.loads(function.get("arguments") or "{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"messages[{i}]: tool call arguments are not JSON", param=f"messages[{i}].tool_calls"
        ) from exc


def plain_text(content: object, i: int, provider: str) -> str:
    """The text of a message that can only be text (system, developer, tool): a string, or
    text parts joined; any other part is refused by name, never dropped."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for j, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text":
            where = f"messages[{i}].content[{j}]"
            raise InvalidRequest(
                f"{where}: {provider} takes only text here, not '{kind}'", param=f"{where}.type"
            )
        texts.append(str(part.get("text", "")))
    return "".join(texts)


def append_turn(turns: list[dict[str, Any]], role: str, key: str, items: list[Any]) -> None:
    """Add a turn, merged into the last one when it has the same role (providers that want
    roles to alternate take consecutive turns of one role as one)."""
    if turns and turns[-1]["role"] == role:
        turns[-1][key] += items
    else:
        turns.append({"role": role, key: items})
