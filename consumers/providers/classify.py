"""Provider failures to broker errors, by HTTP status and headers (never by message text)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

from aibroker.errors import (
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)

RETRYABLE_4XX = frozenset({408, 409, 425, 429})


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` as seconds or an HTTP date."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(when - (time.time() if now is None else now), 0.0)


def classify_status(status: int, headers: Mapping[str, str], body: Any) -> ProviderError:
    """The broker error for a provider's non-2xx answer."""
    error = _error_object(body)
    message = str(error.get("message") or f"provider answered HTTP {status}")
    wait = retry_after(headers)
    if status == 429:
        return ProviderRateLimited(message, retry_after=wait, provider_status=status)
    if status >= 500 or status in RETRYABLE_4XX:
        return ProviderUnavailable(message, retry_after=wait, provider_status=status)
    if status in (401, 403):
        return ProviderAuthFailed(message, provider_status=status)
    code = error.get("code")
    return ProviderRejected(
        message,
        param=error.get("param"),
        provider_status=status,
        code=code if isinstance(code, str) else None,
    )


def _error_object(body: Any) -> dict[str, Any]:
    """The `error` object of an OpenAI-style body; the SDK sometimes hands over just that."""
    if not isinstance(body, dict):
        return {}
    inner = body.get("error")
    if isinstance(inner, dict):
        return inner
    return body if "message" in body else {}
