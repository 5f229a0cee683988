"""Webhook decisions: the schedule, 410, which results make which messages in which shape
(the broker's, OpenAI's), signatures the `standardwebhooks` library and the `openai` SDK
both verify."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import openai
import orjson
import pytest
from openai.types.webhooks import BatchExpiredWebhookEvent, ResponseCompletedWebhookEvent
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook as Verifier

from aibroker.budget import threshold_messages
from aibroker.rules.webhooks import (
    Delivered,
    Disable,
    GiveUp,
    RetryIn,
    after_attempt,
    batch_messages,
    messages,
    openai_result_event,
    signed_headers,
)
from aibroker.stores.tenants import Endpoint, new_webhook_secret
from ingress.tenants_api import signing_secret
from schemas.batches import Batch, BatchStatus
from schemas.envelopes import Delivery, Result, Status, Webhook, WebhookEvent
from schemas.webhook_events import OpenAIEvent, WebhookEndpoint, WebhookFormat

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


def result(
    status: Status,
    webhook: Webhook | None,
    text: str = "hi",
    id: str = "req_1",
    response: dict[str, Any] | None = None,
) -> Result:
    return Result(
        id=id,
        tenant="t",
        status=status,
        response=(response or {"text": text}) if status is Status.SUCCEEDED else None,
        finished_at=1_700_000_000.5,
        webhook=webhook,
    )


def test_a_result_makes_one_message_per_webhook_wanting_its_event() -> None:
    own = Webhook(url="https://a.example/hook")
    only_failures = WebhookEndpoint(url="https://b.example/hook", events=["request.failed"])
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


OPENAI = WebhookEndpoint(url="https://o.example/hook", format=WebhookFormat.OPENAI)
OURS = WebhookEndpoint(url="https://a.example/hook")


@pytest.mark.parametrize(
    ("request_id", "status", "response_status", "expected"),
    [
        ("resp_1", Status.SUCCEEDED, "completed", OpenAIEvent.RESPONSE_COMPLETED),
        ("resp_1", Status.SUCCEEDED, "incomplete", OpenAIEvent.RESPONSE_INCOMPLETE),
        ("resp_1", Status.FAILED, None, OpenAIEvent.RESPONSE_FAILED),
        ("resp_1", Status.CANCELLED, None, OpenAIEvent.RESPONSE_CANCELLED),
        ("resp_1", Status.EXPIRED, None, OpenAIEvent.RESPONSE_FAILED),
        ("resp_1", Status.RUNNING, None, None),
        ("req_1", Status.SUCCEEDED, "completed", None),  # a chat completion: OpenAI has none
        ("req_1", Status.FAILED, None, None),
    ],
)
def test_which_openai_event_a_request_end_is(
    request_id: str, status: Status, response_status: str | None, expected: OpenAIEvent | None
) -> None:
    response = {"object": "response", "status": response_status} if response_status else None
    ended = result(status, None, id=request_id, response=response)
    assert openai_result_event(ended) == expected
    made = messages(ended, [OPENAI], 10_000, 0)
    assert [m.payload["type"] for m in made] == ([expected.value] if expected else [])


def test_an_openai_endpoint_gets_openais_event_object() -> None:
    done = result(Status.SUCCEEDED, None, id="resp_abc", response={"status": "completed"})
    ours, theirs = messages(done, [OURS, OPENAI], 10_000, 5.0)
    assert ours.payload["type"] == "request.completed"
    assert ours.payload["data"]["response"] == {"status": "completed"}
    event_id = theirs.payload.pop("id")
    assert event_id.startswith("evt_")
    assert len(event_id) == 36
    assert theirs.payload == {
        "object": "event",
        "created_at": 1_700_000_000,  # when it finished, unix seconds
        "type": "response.completed",
        "data": {"id": "resp_abc"},
    }
    assert theirs.event is WebhookEvent.REQUEST_COMPLETED  # the broker's name of it
    assert theirs.id != ours.id  # one webhook-id per URL
    [again] = messages(done, [OPENAI], 10_000, 99.0)
    assert again.payload["id"] == event_id  # made again after a crash: the same event


def test_one_url_in_both_formats_gets_two_messages() -> None:
    url = "https://both.example/hook"
    both = [WebhookEndpoint(url=url), WebhookEndpoint(url=url, format=WebhookFormat.OPENAI)]
    done = result(Status.SUCCEEDED, None, id="resp_1", response={"status": "completed"})
    ours, theirs = messages(done, both, 10_000, 0)
    assert (ours.payload["type"], theirs.payload["type"]) == (
        "request.completed",
        "response.completed",
    )
    assert ours.id != theirs.id  # else the second would be deduped as made already


def test_an_openai_endpoint_hears_only_the_events_it_named() -> None:
    failures = WebhookEndpoint(
        url="https://o.example/hook", format=WebhookFormat.OPENAI, events=["response.failed"]
    )
    ok = result(Status.SUCCEEDED, None, id="resp_1", response={"status": "completed"})
    assert messages(ok, [failures], 10_000, 0) == []
    [failed] = messages(result(Status.FAILED, None, id="resp_1"), [failures], 10_000, 0)
    assert failed.payload["type"] == "response.failed"


def test_the_requests_own_webhook_keeps_the_brokers_events() -> None:
    own = Webhook(url="https://own.example/hook")
    made = messages(result(Status.SUCCEEDED, own, id="resp_1"), [], 10_000, 0)
    assert [(m.url, m.payload["type"], m.endpoint) for m in made] == [
        ("https://own.example/hook", "request.completed", False)
    ]


def batch(status: BatchStatus) -> Batch:
    ended_at = {f"{status.value}_at": 1_700_000_123}
    return Batch.model_validate(
        {
            "id": "batch_1",
            "endpoint": "/v1/chat/completions",
            "input_file_id": "file_1",
            "completion_window": "24h",
            "status": status,
            "created_at": 1_700_000_000,
            "expires_at": 1_700_086_400,
            "tenant": "t",
        }
        | ended_at
    )


@pytest.mark.parametrize(
    "status",
    [BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED],
)
def test_an_ended_batch_in_either_shape(status: BatchStatus) -> None:
    ours, theirs = batch_messages(batch(status), [OURS, OPENAI], 5.0)
    assert ours.payload["type"] == theirs.payload["type"] == f"batch.{status.value}"
    assert ours.payload["data"]["status"] == status.value  # the batch object
    assert theirs.payload["object"] == "event"
    assert theirs.payload["created_at"] == 1_700_000_123  # when it ended
    assert theirs.payload["data"] == {"id": "batch_1"}


def test_openai_endpoints_hear_no_budget_threshold() -> None:
    made = threshold_messages(
        "t", "2026-12", 80, Decimal(80), Decimal(100), [OURS, OPENAI], time.time()
    )
    assert [m.url for m in made] == [OURS.url]


def _signed(delivery: Delivery, secrets: list[str]) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(delivery.payload)
    return body, signed_headers(delivery, body, secrets)


def test_the_openai_sdk_unwraps_our_events_with_either_secret() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    done = result(Status.SUCCEEDED, None, id="resp_abc", response={"status": "completed"})
    [response_event] = messages(done, [OPENAI], 10_000, 0)
    [batch_event] = batch_messages(batch(BatchStatus.EXPIRED), [OPENAI], 0)
    for secret in (old, new):
        sdk = openai.OpenAI(api_key="unused", webhook_secret=secret)
        body, headers = _signed(response_event, [new, old])
        event = sdk.webhooks.unwrap(body, headers)
        assert isinstance(event, ResponseCompletedWebhookEvent)
        assert event.data.id == "resp_abc"
        body, headers = _signed(batch_event, [new, old])
        expired = sdk.webhooks.unwrap(body, headers)
        assert isinstance(expired, BatchExpiredWebhookEvent)
        assert expired.data.id == "batch_1"
    stranger = openai.OpenAI(api_key="unused", webhook_secret=new_webhook_secret())
    with pytest.raises(openai.InvalidWebhookSignatureError):
        stranger.webhooks.unwrap(*_signed(response_event, [new, old]))


@pytest.mark.parametrize(
    ("given", "unknown"),
    [
        ({"format": "openai", "events": ["response.completed", "request.completed"]}, "request"),
        ({"events": ["response.completed"]}, "response.completed"),
        ({"format": "openai", "events": ["budget.threshold"]}, "budget.threshold"),
    ],
)
def test_an_unknown_event_type_is_refused_by_name(given: dict[str, Any], unknown: str) -> None:
    with pytest.raises(ValidationError, match=f"unknown event type '{unknown}"):
        Endpoint.model_validate({"url": "https://a.example/hook"} | given)


def test_an_endpoint_names_every_event_of_its_format_by_default() -> None:
    stored = Endpoint.model_validate({"url": "https://a.example/hook"})  # as stored before
    assert stored.format is WebhookFormat.AIBROKER
    assert set(stored.events) == set(WebhookEvent)
    theirs = Endpoint.model_validate({"url": "https://a.example/hook", "format": "openai"})
    assert set(theirs.events) == set(OpenAIEvent)


@pytest.mark.parametrize(
    ("secret", "accepted"),
    [
        (new_webhook_secret(), True),
        ("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", True),
        ("whsec_c2VjcmV0LXR3by1mb3Itcm90YXRpb24", False),  # unpadded: the SDK cannot decode it
        ("whsec_c2VjcmV0", False),  # 6 bytes
        ("whsec_not base64!", False),
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", False),
    ],
)
def test_only_secrets_both_verifiers_decode_alike_are_taken(secret: str, accepted: bool) -> None:
    assert signing_secret(secret) is accepted
