"""The PII guardrail through the whole broker: a tenant's policy set through the admin API
(RBAC-checked), redaction proven by the mock provider's call log (it never saw the raw value,
on the sync path, the async path, a batch line and a direct producer's envelope), a blocked
request answered 400 `content_policy_violation` and audited, and the policy's test route."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import openai
import orjson
import pytest

from aibroker.client import KafkaProducer
from aibroker.kafka.clients import connection, make_consumer
from loadtest.stack import Stack
from schemas.envelopes import Kind, Status
from tests.e2e.conftest import guarded_tenant
from tests.e2e.test_batches import ended, jsonl, output, start_batch
from tests.waiting import eventually
from topics.catalog import TopicNames

pytestmark = pytest.mark.e2e

EMAIL, CARD = "jane.roe@example.com", "4111 1111 1111 1111"


def chat(text: str) -> dict[str, Any]:
    return {"model": "mock/echo", "messages": [{"role": "user", "content": text}]}


async def history(stack: Stack) -> list[str]:
    """Every last message the mock provider was sent."""
    async with httpx.AsyncClient() as client:
        calls = (await client.get(f"{stack.mock_url}/_history")).json()["calls"]
    return [str(c["text"]) for c in calls]


async def tenant_with(admin: httpx.AsyncClient, stack: Stack, pii: str) -> tuple[str, str]:
    """A new tenant whose input PII guard is `pii`, and a key of it."""
    return await guarded_tenant(admin, stack, {"input": {"pii": pii}})


async def test_redacted_before_the_provider_sees_it(
    stack: Stack, admin: httpx.AsyncClient, sdk_of: Any
) -> None:
    _, key = await tenant_with(admin, stack, "redact")
    sdk = sdk_of(key)
    text = f"Mail {EMAIL} or {EMAIL}, card {CARD}, thanks {uuid.uuid4().hex[:6]}"
    reply = await sdk.chat.completions.create(**chat(text))
    answer = reply.choices[0].message.content
    assert "<EMAIL_1> or <EMAIL_1>, card <CREDIT_CARD_1>" in answer  # the same value, one name
    sent = [t for t in await history(stack) if text[-6:] in t]
    assert len(sent) == 1
    assert EMAIL not in sent[0]
    assert CARD not in sent[0]


async def test_an_async_request_is_stored_redacted(stack: Stack, admin: httpx.AsyncClient) -> None:
    _, key = await tenant_with(admin, stack, "redact")
    async with httpx.AsyncClient(
        base_url=stack.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        tag = uuid.uuid4().hex[:6]
        body = {"endpoint": "/v1/chat/completions", "body": chat(f"ssn 536-22-8141 {tag}")}
        queued = await http.post("/v1/requests", json=body)
        assert queued.status_code == 202, queued.text
        done = await http.get(f"/v1/requests/{queued.json()['id']}", params={"wait": 30})
        assert done.json()["status"] == "succeeded", done.text
        assert "536-22-8141" not in done.text
    assert [t for t in await history(stack) if tag in t] == [f"ssn <US_SSN_1> {tag}"]
    written = await requests_record(stack, queued.json()["id"])
    assert b"536-22-8141" not in written
    envelope = orjson.loads(written)
    assert envelope["guarded"] is True
    assert envelope["body"]["messages"][0]["content"] == f"ssn <US_SSN_1> {tag}"


async def requests_record(stack: Stack, request_id: str) -> bytes:
    """The request's record as ingress wrote it to the interactive requests topic."""
    topic = TopicNames(stack.prefix).requests_interactive
    consumer = make_consumer(stack.kafka, topic, group_id=None)
    await consumer.start()
    try:

        async def found() -> bytes | None:
            batches = await consumer.getmany(timeout_ms=200)
            for record in (r for records in batches.values() for r in records):
                if record.key == request_id.encode() and record.value is not None:
                    return bytes(record.value)
            return None

        value = await eventually(found, timeout_s=30, what="the request's record")
        assert value is not None
        return value
    finally:
        await consumer.stop()


async def test_blocked_with_a_typed_error_and_audited(
    stack: Stack, admin: httpx.AsyncClient, sdk_of: Any
) -> None:
    name, key = await tenant_with(admin, stack, "block")
    sdk = sdk_of(key)
    tag = uuid.uuid4().hex[:6]
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(**chat(f"IBAN DE89 3704 0044 0532 0130 00 {tag}"))
    error = refused.value.body
    assert isinstance(error, dict)
    assert (error["code"], error["param"]) == ("content_policy_violation", "guardrails.pii")
    clean = await sdk.chat.completions.create(**chat(f"nothing personal {tag}"))
    assert clean.choices[0].message.content is not None
    assert not [t for t in await history(stack) if "DE89" in t and tag in t]

    async def audited() -> bool:
        params = {"action": "guardrails.pii.block", "tenant": name}
        page = (await admin.get("/audit", params=params)).json()
        return any(
            e["outcome"] == "refused" and e["detail"].get("found") == {"IBAN": 1}
            for e in page["data"]
        )

    await eventually(audited, timeout_s=30, what="the blocked request audited")


async def test_a_batch_line_is_guarded(stack: Stack, admin: httpx.AsyncClient, sdk_of: Any) -> None:
    _, key = await tenant_with(admin, stack, "redact")
    sdk = sdk_of(key)
    tag = uuid.uuid4().hex[:6]
    lines = [
        {
            "custom_id": "pii",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": chat(f"reach me at {EMAIL} {tag}"),
        }
    ]
    batch = await start_batch(sdk, jsonl(lines))
    done = await ended(sdk, batch.id)
    assert done.status == "completed"
    [line] = await output(sdk, done.output_file_id)
    content = line["response"]["body"]["choices"][0]["message"]["content"]
    assert f"<EMAIL_1> {tag}" in content
    assert [t for t in await history(stack) if tag in t] == [f"reach me at <EMAIL_1> {tag}"]


async def test_a_blocked_batch_line_ends_in_the_error_file(
    stack: Stack, admin: httpx.AsyncClient, sdk_of: Any
) -> None:
    _, key = await tenant_with(admin, stack, "block")
    sdk = sdk_of(key)
    tag = uuid.uuid4().hex[:6]
    lines = [
        {"custom_id": c, "method": "POST", "url": "/v1/chat/completions", "body": chat(text)}
        for c, text in (("pii", f"ssn 536-22-8141 {tag}"), ("clean", f"nothing {tag}"))
    ]
    done = await ended(sdk, (await start_batch(sdk, jsonl(lines))).id)
    [ok] = await output(sdk, done.output_file_id)
    [refused] = await output(sdk, done.error_file_id)
    assert ok["custom_id"] == "clean"
    assert refused["custom_id"] == "pii"
    assert refused["response"]["status_code"] == 400
    error = refused["response"]["body"]["error"]
    assert (error["code"], error["param"]) == ("content_policy_violation", "guardrails.pii")
    assert [t for t in await history(stack) if tag in t] == [f"nothing {tag}"]


async def test_a_direct_producers_request_is_guarded(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    """tenant-a signs its own envelopes: the dispatcher runs its policy before routing."""
    assert (await admin.put("/guardrails/tenant-a", json={"input": {"pii": "redact"}})).is_success
    producing = {"enable_idempotence": stack.kafka.producer_idempotent}
    async with KafkaProducer(
        tenant="tenant-a",
        secret=stack.producer_secret,
        prefix=stack.prefix,
        results=True,
        producer_options=producing,
        **connection(stack.kafka),
    ) as producer:

        async def redacted() -> bool:
            # The dispatcher reads the policy through its tenant cache (0.5 s in this stack).
            tag = uuid.uuid4().hex[:6]
            async with asyncio.timeout(30):
                result = await producer.run(Kind.CHAT, chat(f"key AKIAIOSFODNN7EXAMPLE {tag}"))
            assert result.status is Status.SUCCEEDED
            return f"key <API_KEY_1> {tag}" in await history(stack)

        try:
            await eventually(redacted, timeout_s=30, what="the producer's request redacted")
        finally:
            await admin.put("/guardrails/tenant-a", json={})
    assert not [t for t in await history(stack) if "AKIAIOSFODNN7EXAMPLE" in t][1:]


async def test_the_test_route_and_rbac(stack: Stack, admin: httpx.AsyncClient) -> None:
    name = f"rbac-{uuid.uuid4().hex[:8]}"
    assert (await admin.put(f"/tenants/{name}", json={})).is_success
    created = await admin.post("/keys", json={"tenant": None, "roles": ["viewer"]})
    assert created.status_code == 201, created.text
    viewer = {"Authorization": f"Bearer {created.json()['key']}"}
    policy = {"input": {"pii": "block"}, "models": {"mock/echo": {"input": {"pii": "redact"}}}}
    refused = await admin.put(f"/guardrails/{name}", json=policy, headers=viewer)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert (await admin.put(f"/guardrails/{name}", json=policy)).status_code == 200
    read = (await admin.get(f"/guardrails/{name}", headers=viewer)).json()
    assert read["input"] == {"pii": "block"}
    assert read["models"]["mock/echo"]["input"] == {"pii": "redact"}
    text = f"mail {EMAIL} from 10.1.2.3"
    tried = await admin.post("/guardrails/test", json={"tenant": name, "text": text})
    pii = tried.json()["guards"]["pii"]
    assert pii["action"] == "block"
    assert pii["blocked"] is True
    assert pii["redacted"] == "mail <EMAIL_1> from <IP_ADDRESS_1>"
    assert [(f["type"], text[f["start"] : f["end"]]) for f in pii["findings"]] == [
        ("EMAIL", EMAIL),
        ("IP_ADDRESS", "10.1.2.3"),
    ]
    by_alias = await admin.post(
        "/guardrails/test", json={"tenant": name, "text": text, "model": "mock/echo"}
    )
    assert by_alias.json()["guards"]["pii"]["sent"] == "mail <EMAIL_1> from <IP_ADDRESS_1>"
