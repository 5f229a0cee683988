"""The tokens a request is charged at admission, before its real usage is known (its terminal
result reconciles the two)."""

from __future__ import annotations

from typing import Any

from schemas.envelopes import Kind


def estimate_tokens(kind: Kind, body: dict[str, Any], default_completion: int) -> int:
    """Tokens charged at admission: ~4 characters a token over the prompt, plus the
    completion's cap (`max_tokens`, `max_output_tokens`, else `default_completion`) for chat
    and the Responses API. OCR counts none."""
    if kind is Kind.OCR:
        return 0
    if kind in (Kind.EMBEDDINGS, Kind.MODERATIONS):
        return _chars(body.get("input")) // 4 + 1
    if kind is Kind.RESPONSES:
        cap = body.get("max_output_tokens") or default_completion
        return (_chars(body.get("input")) + _chars(body.get("instructions"))) // 4 + 1 + int(cap)
    cap = body.get("max_completion_tokens") or body.get("max_tokens") or default_completion
    return _chars(body.get("messages")) // 4 + 1 + int(cap)


def _chars(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, int):
        return 1  # a token id
    if isinstance(value, list):
        return sum(_chars(v) for v in value)
    if isinstance(value, dict):
        return sum(_chars(v) for v in value.values())
    return 0
