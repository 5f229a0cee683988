import pytest

from aibroker.errors import (
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from consumers.providers.classify import classify_status, retry_after

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "kind", "retryable", "http_status"),
    [
        (429, ProviderRateLimited, True, 429),
        (500, ProviderUnavailable, True, 502),
        (502, ProviderUnavailable, True, 502),
        (503, ProviderUnavailable, True, 502),
        (504, ProviderUnavailable, True, 502),
        (408, ProviderUnavailable, True, 502),
        (409, ProviderUnavailable, True, 502),
        (400, ProviderRejected, False, 400),
        (404, ProviderRejected, False, 404),
        (422, ProviderRejected, False, 422),
        (401, ProviderAuthFailed, False, 502),
        (403, ProviderAuthFailed, False, 502),
    ],
)
def test_status_decides_the_class(
    status: int, kind: type[ProviderError], retryable: bool, http_status: int
) -> None:
    error = classify_status(status, {}, {"error": {"message": "m"}})
    assert type(error) is kind
    assert error.retryable is retryable
    assert error.http_status == http_status
    assert error.info().provider_status == status


def test_message_text_never_decides() -> None:
    body = {"error": {"message": "rate limit exceeded, timeout, overloaded"}}
    assert type(classify_status(400, {}, body)) is ProviderRejected


def test_context_length_is_reported_as_such() -> None:
    body = {
        "error": {"message": "too long", "code": "context_length_exceeded", "param": "messages"}
    }
    info = classify_status(400, {}, body).info()
    assert info.code == "context_length_exceeded"
    assert info.param == "messages"


def test_rate_limit_carries_retry_after() -> None:
    error = classify_status(429, {"retry-after": "7"}, None)
    assert error.retry_after == 7.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Thu, 01 Jan 1970 00:01:40 GMT"}, 40.0),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(headers, now=60.0) == expected


def test_the_bare_error_object_is_understood_too() -> None:
    info = classify_status(400, {}, {"message": "bad temperature", "param": "temperature"}).info()
    assert info.message == "bad temperature"
    assert info.param == "temperature"
