"""A conversation continued by `previous_response_id`, and a response's input items listed.
Pure: ingress prepends the previous response's input and output to the new input before the
Kafka write, so every target (a provider's own `/v1/responses`, or any chat API through the
translation) gets one self-contained conversation, and a redelivered request means the same."""

from __future__ import annotations

from typing import Any

ORDERS = ("asc", "desc")
MAX_LIMIT = 100


def as_items(given: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`input` as a list of items: a string is one user message."""
    return [{"role": "user", "content": given}] if isinstance(given, str) else list(given)


def continued(
    body: dict[str, Any], previous: dict[str, Any], output: list[dict[str, Any]]
) -> dict[str, Any]:
    """`body` with the previous response's input (its own earlier turns included) and its
    output before its own input. `instructions` are not carried over, as OpenAI does not."""
    before = [*as_items(previous["input"]), *output]
    return {**body, "input": [*before, *as_items(body["input"])]}


def own_input(body: dict[str, Any], context: int) -> list[dict[str, Any]]:
    """The items a request gave itself: its input past the `context` items prepended."""
    return as_items(body["input"])[context:]


def context_size(previous: dict[str, Any], output: list[dict[str, Any]]) -> int:
    """How many items `continued` prepended from this previous response."""
    return len(as_items(previous["input"])) + len(output)


def listed_item(item: dict[str, Any], response_id: str, index: int) -> dict[str, Any]:
    """An input item as OpenAI lists it: a message with `type`, an `id` and content parts
    (a string content is one `input_text`, or `output_text` for the assistant)."""
    shown = {"type": "message", **item}
    shown.setdefault("id", f"msg_{response_id.partition('_')[2] or response_id}_in{index}")
    if shown["type"] == "message":
        content = shown.get("content")
        if isinstance(content, str):
            part = "output_text" if shown.get("role") == "assistant" else "input_text"
            shown["content"] = [{"type": part, "text": content}]
        shown.setdefault("status", "completed")
    return shown


def page(
    items: list[dict[str, Any]], order: str = "desc", limit: int = 20, after: str | None = None
) -> dict[str, Any]:
    """OpenAI's list shape over `items` (oldest first): `order` `desc` (the default) newest
    first, at most `limit`, starting after the item whose id is `after` (unknown: from the
    start)."""
    ordered = items[::-1] if order == "desc" else items
    ids = [str(item.get("id")) for item in ordered]
    start = ids.index(after) + 1 if after in ids else 0
    data = ordered[start : start + limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": start + limit < len(ordered),
    }
