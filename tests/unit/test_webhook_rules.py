"""Webhook decisions: the schedule, 410, which results make which messages, signatures."""

from __future__ import annotations

import time

import orjson
import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from aibroker.rules.webhooks import (
    Delivered,
    Disable,
    GiveUp,
    RetryIn,
    after_attempt,
    messages,
    signed_headers,
)
from aibroker.stores.tenants import new_webhook_secret
from schemas.envelopes import Result, Status, Webhook, WebhookEvent

pytestmark = pytest.mark.unit

SCHEDULE = [0.0, 5.0, 300.0]


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_only_2xx_delivers(status: int) -> None:
    assert after_attempt(status, None, 1, SCHEDULE, 0.5) == Delivered()


@pytest.mark.parametrize("status", [None, 301, 302, 400, 404, 429, 500, 503])
def test_anything_else_is_retried_on_the_schedule(status: int | None) -> None:
    assert after_attempt(status, None, 1, SCHEDULE, 0.5) == RetryIn(5.0)
    assert after_attempt(status, None, 2, SCHEDULE, 0.5) == RetryIn(300.0)
    assert isinstance(after_attempt(status, None, 3, SCHEDULE, 0.5), GiveUp)


def test_the_wait_is_spread_and_never_before_retry_after() -> None:
    assert after_attempt(500, None, 1, SCHEDULE, 0.0) == RetryIn(4.5)
    assert after_attempt(500, None, 1, SCHEDULE, 0.999).delay_s == pytest.approx(5.5, abs=0.01)  # type: ignore[union-attr]
    assert after_attempt(429, 60.0, 1, SCHEDULE, 0.5) == RetryIn(60.0)


def test_410_disables() -> None:
    assert after_attempt(410, None, 1, SCHEDULE, 0.5) == Disable()


def result(status: Status, webhook: Webhook | None, text: str = "hi") -> Result:
    return Result(
        id="req_1",
        tenant="t",
        status=status,
        response={"text": text} if status is Status.SUCCEEDED else None,
        finished_at=time.time(),
        webhook=webhook,
    )


def test_a_result_makes_one_message_per_webhook_wanting_its_event() -> None:
    own = Webhook(url="https://a.example/hook")
    only_failures = Webhook(url="https://b.example/hook", events=[WebhookEvent.REQUEST_FAILED])
    made = messages(result(Status.SUCCEEDED, own), [only_failures], 10_000, 0)
    assert [(m.url, m.event, m.endpoint) for m in made] == [
        ("https://a.example/hook", WebhookEvent.REQUEST_COMPLETED, False)
    ]
    failed = messages(result(Status.FAILED, own), [only_failures], 10_000, 0)
    assert [m.url for m in failed] == ["https://b.example/hook", "https://a.example/hook"]
    assert failed[0].endpoint


def test_a_large_result_is_announced_by_link() -> None:
    big = result(Status.SUCCEEDED, Webhook(url="https://a.example/h"), text="x" * 5000)
    [small] = messages(big, [], 1000, 0)
    assert small.payload["data"]["url"] == "/v1/requests/req_1"
    assert "response" not in small.payload["data"]
    assert small.payload["type"] == "request.completed"


def test_signatures_verify_with_either_secret_during_rotation() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    [message] = messages(
        result(Status.SUCCEEDED, Webhook(url="https://a.example/h")), [], 10_000, 0
    )
    body = orjson.dumps(message.payload)
    headers = signed_headers(message, body, [new, old])
    assert headers["webhook-id"] == message.id
    for secret in (old, new):
        assert Verifier(secret).verify(body, headers)["type"] == "request.completed"
    with pytest.raises(Exception, match="signature"):
        Verifier(new_webhook_secret()).verify(body, headers)
