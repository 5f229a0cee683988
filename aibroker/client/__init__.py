"""A Python client of the broker: `Broker` over its HTTP API, `KafkaProducer` for producers
that write envelopes straight to the requests topics, and `verify_webhook` for receivers.

    async with Broker("http://localhost:8080", api_key) as broker:
        done = await broker.run("/v1/chat/completions", {"model": "gpt-4o-mini", ...})

    async with KafkaProducer("localhost:9092", tenant="acme", secret=s, results=True) as kp:
        result = await kp.run(Kind.CHAT, {"model": "gpt-4o-mini", ...})
"""

from __future__ import annotations

from aibroker.client.envelopes import new_request, submission_value
from aibroker.client.errors import APIError
from aibroker.client.http import BatchProgress, Broker, RequestState
from aibroker.client.producer import KafkaProducer
from aibroker.client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "APIError",
    "BatchProgress",
    "Broker",
    "KafkaProducer",
    "RequestState",
    "WebhookVerificationError",
    "new_request",
    "submission_value",
    "verify_webhook",
]
