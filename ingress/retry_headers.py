"""The retry headers OpenAI's SDKs read, computed one way for every error answer.

The SDKs retry 408, 409, 429 and 5xx unless the answer says `x-should-retry: false`, and
wait `retry-after-ms` (else `Retry-After`). An error the broker marks retryable (a rate limit,
Kafka or Redis unavailable, a provider that failed) says `true`; every other one says
`false`: a passed deadline (408), a cancelled request (409), a spent budget (429
`insufficient_quota`) or a broker bug (500) would only fail again."""

from __future__ import annotations

import math


def retry_headers(retryable: bool, retry_after_s: float | None) -> dict[str, str]:
    headers = {"x-should-retry": "true" if retryable else "false"}
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
        headers["retry-after-ms"] = str(max(1, math.ceil(retry_after_s * 1000)))
    return headers
