"""The client's pure parts: the envelopes a direct producer writes, and webhook checks."""

from __future__ import annotations

import json
import time

import pytest

from aibroker.client import WebhookVerificationError, new_request, submission_value, verify_webhook
from aibroker.client.envelopes import BROKER_FIELDS, record
from aibroker.rules.webhooks import signed_headers
from aibroker.signing import Signer, proof
from schemas.envelopes import Delivery, Kind, Request, WebhookEvent
from topics import asyncapi

pytestmark = pytest.mark.unit

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_" + "c2VjcmV0LXR3by1mb3Itcm90YXRpb24="
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_a_producers_record_is_keyed_signed_and_reads_back_as_the_request() -> None:
    request = new_request(tenant="acme", kind=Kind.CHAT, body=CHAT, now=time.time())
    key, value, headers = record(request, "s3cret")
    assert key == request.id.encode()
    assert request.id.startswith("req_")
    assert request.model == "gpt-4o-mini"
    assert Request.model_validate_json(value) == request
    assert BROKER_FIELDS.isdisjoint(json.loads(value))
    assert proof(value, headers, "acme", None, {"acme": "s3cret"}) is Signer.TENANT
    assert proof(value, headers, "other", None, {"other": "s3cret2"}) is None
    assert record(request, None)[2] == []


def test_the_document_gives_producers_none_of_the_broker_fields() -> None:
    assert BROKER_FIELDS.issubset(Request.model_fields)
    submission = asyncapi.reference_document()["components"]["schemas"]["RequestSubmission"]
    for variant in submission["oneOf"]:
        assert BROKER_FIELDS.isdisjoint(variant["properties"])
        assert {"id", "tenant", "kind", "body", "created_at"} <= set(variant["properties"])


def test_a_body_is_validated_as_its_endpoint_validates_it() -> None:
    with pytest.raises(ValueError, match="input"):
        new_request(tenant="acme", kind=Kind.EMBEDDINGS, body={"model": "e"}, now=0.0)
    with pytest.raises(ValueError, match="messages"):
        new_request(tenant="acme", kind=Kind.CHAT, body={"model": "m", "messages": []}, now=0.0)


def test_the_wire_form_leaves_out_what_is_unset() -> None:
    request = new_request(tenant="acme", kind=Kind.CHAT, body=CHAT, now=1.0, request_id="req_1")
    wire = json.loads(submission_value(request))
    wire.pop("cache", None)  # the client's cache directive, `default` unless asked
    assert wire == {
        "v": 1,
        "id": "req_1",
        "tenant": "acme",
        "kind": "chat",
        "model": "gpt-4o-mini",
        "body": CHAT,
        "mode": "async",
        "priority": "interactive",
        "created_at": 1.0,
    }


def delivery() -> tuple[bytes, Delivery]:
    payload = {"type": "request.completed", "data": {"id": "req_1", "status": "succeeded"}}
    d = Delivery(
        id="msg_1",
        request_id="req_1",
        tenant="acme",
        url="https://example.com/hook",
        event=WebhookEvent.REQUEST_COMPLETED,
        payload=payload,
        created_at=time.time(),
    )
    return json.dumps(payload).encode(), d


def test_a_webhook_the_broker_signed_verifies_with_either_secret_of_a_rotation() -> None:
    body, d = delivery()
    headers = signed_headers(d, body, [OTHER, SECRET])
    assert verify_webhook(body, headers, SECRET)["data"]["status"] == "succeeded"
    assert verify_webhook(body, headers, [OTHER])["type"] == "request.completed"
    upper = {k.title(): v for k, v in headers.items()}
    assert verify_webhook(body, upper, SECRET)["data"]["id"] == "req_1"


def test_a_forged_or_altered_webhook_does_not_verify() -> None:
    body, d = delivery()
    headers = signed_headers(d, body, [SECRET])
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body.replace(b"succeeded", b"failed"), headers, SECRET)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, OTHER)
