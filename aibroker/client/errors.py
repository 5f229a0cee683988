"""What the client raises: the broker's OpenAI-style error object, with its HTTP status.

APIError            an answer with an error status (`status`, `type`, `code`, `message`)
TimeoutError        (builtin) a wait that ran out before the request ended
"""

from __future__ import annotations

from typing import Any

import httpx


class APIError(Exception):
    """The broker answered with an error (`{"error": {"message", "type", "code", "param"}}`)."""

    def __init__(self, status: int, error: dict[str, Any], retry_after: float | None) -> None:
        super().__init__(f"{status} {error.get('type')}: {error.get('message')}")
        self.status = status
        self.type: str | None = error.get("type")
        self.code: str | None = error.get("code")
        self.message: str = str(error.get("message", ""))
        self.retry_after = retry_after
        """Seconds the broker asks to wait before trying again (429, 503), if it said."""

    @property
    def retryable(self) -> bool:
        return self.status in (408, 429, 502, 503, 504)


def raise_for(answer: httpx.Response) -> None:
    """An APIError for an error answer; nothing for a success."""
    if answer.is_success:
        return
    try:
        error = answer.json().get("error") or {}
    except ValueError:
        error = {"message": answer.text, "type": "http_error"}
    retry = answer.headers.get("retry-after")
    try:
        retry_after = float(retry) if retry is not None else None
    except ValueError:
        retry_after = None
    raise APIError(answer.status_code, error, retry_after)
