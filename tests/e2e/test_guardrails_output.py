"""Output guardrails through the whole broker: an answer redacted or blocked before its result
is published (the block answered 400 `content_policy_violation`, audited, billed as the error
it was), a stream whose window catches a value split across chunks and trips mid-stream, and
reversible redaction: the provider sees placeholders (its call log proves it), the caller gets
its own values back."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import openai
import orjson
import pytest

from loadtest.stack import Stack
from tests.e2e.conftest import guarded_tenant
from tests.e2e.test_guardrails import history, requests_record
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

EMAIL, CARD = "jane.roe@example.com", "4111 1111 1111 1111"
FILLER = "here is the whole answer you asked for, word by word, before anything personal: "


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "mock/echo", "messages": [{"role": "user", "content": text}], **extra}


async def tenant_with(admin: httpx.AsyncClient, stack: Stack, policy: dict[str, Any]) -> str:
    """A key of a new tenant with this guardrail policy."""
    return (await guarded_tenant(admin, stack, policy))[1]


async def sse(stack: Stack, key: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every event of a streamed chat completion, as the caller reads them."""
    events: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as http,
        http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as answer,
    ):
        assert answer.status_code == 200
        async for line in answer.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(orjson.loads(line[6:]))
    return events


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(c["delta"].get("content") or "" for e in events for c in e.get("choices") or [])


async def test_an_answer_is_redacted_before_it_is_published(
    stack: Stack, admin: httpx.AsyncClient, sdk_of: Any
) -> None:
    sdk = sdk_of(await tenant_with(admin, stack, {"output": {"pii": "redact"}}))
    tag = uuid.uuid4().hex[:6]
    reply = await sdk.chat.completions.create(**chat(f"mail {EMAIL}, card {CARD} {tag}"))
    answer = reply.choices[0].message.content
    assert answer == f"echo: mail <EMAIL_1>, card <CREDIT_CARD_1> {tag}"
    assert [t for t in await history(stack) if tag in t] == [f"mail {EMAIL}, card {CARD} {tag}"]


async def test_a_blocked_answer_is_refused_audited_and_billed(
    stack: Stack, admin: httpx.AsyncClient, sdk_of: Any
) -> None:
    key = await tenant_with(admin, stack, {"output": {"pii": "block"}})
    sdk = sdk_of(key)
    tag = uuid.uuid4().hex[:6]
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(**chat(f"IBAN DE89 3704 0044 0532 0130 00 {tag}"))
    error = refused.value.body
    assert isinstance(error, dict)
    assert (error["code"], error["param"]) == ("content_policy_violation", "guardrails.output.pii")
    assert len([t for t in await history(stack) if tag in t]) == 1  # the provider did answer
    clean = await sdk.chat.completions.create(**chat(f"nothing personal {tag}"))
    assert clean.choices[0].message.content == f"echo: nothing personal {tag}"

    async def audited() -> bool:
        page = (await admin.get("/audit", params={"action": "guardrails.output.pii.block"})).json()
        return any(
            e["outcome"] == "refused"
            and e["detail"].get("where") == "pool"
            and e["detail"].get("found") == {"IBAN": 1}
            for e in page["data"]
        )

    await eventually(audited, timeout_s=30, what="the blocked answer audited")


async def test_a_blocked_answer_is_billed_as_an_error(
    stack: Stack, admin: httpx.AsyncClient, sdk_of: Any
) -> None:
    name = f"billed-{uuid.uuid4().hex[:8]}"
    assert (await admin.put(f"/tenants/{name}", json={})).is_success
    assert (await admin.put(f"/guardrails/{name}", json={"output": {"pii": "block"}})).is_success
    sdk = sdk_of(stack.new_key(name))
    with pytest.raises(openai.BadRequestError):
        await sdk.chat.completions.create(**chat(f"ssn 536-22-8141 {uuid.uuid4().hex[:6]}"))

    async def billed() -> dict[str, Any] | None:
        rows = (await admin.get("/usage", params={"tenant": name})).json()["data"]
        return rows[0] if rows and rows[0].get("errors") else None

    row = await eventually(billed, timeout_s=30, what="the blocked call in the usage ledger")
    assert row is not None
    assert row["requests"] == 1
    assert row["errors"] == 1
    assert row["completion_tokens"] > 0  # the provider answered: its tokens are on record


async def test_a_stream_trips_mid_stream(stack: Stack, admin: httpx.AsyncClient) -> None:
    key = await tenant_with(admin, stack, {"output": {"pii": "block"}})
    tag = uuid.uuid4().hex[:6]
    events = await sse(stack, key, chat(f"{FILLER}card {CARD} and more words after {tag}"))
    errors = [e["error"] for e in events if "error" in e]
    assert len(errors) == 1
    assert events[-1].get("error") == errors[0]  # the last event
    assert (errors[0]["code"], errors[0]["param"]) == (
        "content_policy_violation",
        "guardrails.output.pii",
    )
    sent = text_of(events)
    assert sent.startswith("echo: here is the whole answer")  # released before the card came
    assert "4111" not in sent  # no group of the card, though the provider streamed it word by word


async def test_a_stream_is_redacted_across_chunks(
    stack: Stack, admin: httpx.AsyncClient, sdk_of: Any
) -> None:
    sdk = sdk_of(await tenant_with(admin, stack, {"output": {"pii": "redact"}}))
    tag = uuid.uuid4().hex[:6]
    stream = await sdk.chat.completions.create(
        **chat(f"{FILLER}card {CARD}, ok {tag}"), stream=True
    )
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces) == f"echo: {FILLER}card <CREDIT_CARD_1>, ok {tag}"
    assert len([p for p in pieces if p]) > 3  # still a stream, not one held-back block


async def test_reversible_redaction(stack: Stack, admin: httpx.AsyncClient, sdk_of: Any) -> None:
    policy = {"input": {"pii": "redact"}, "restore": True}
    key = await tenant_with(admin, stack, policy)
    sdk = sdk_of(key)
    tag = uuid.uuid4().hex[:6]
    reply = await sdk.chat.completions.with_raw_response.create(
        **chat(f"write to {EMAIL} and {EMAIL} {tag}")
    )
    answer = reply.parse().choices[0].message.content
    assert answer == f"echo: write to {EMAIL} and {EMAIL} {tag}"
    assert [t for t in await history(stack) if tag in t] == [
        f"write to <EMAIL_1> and <EMAIL_1> {tag}"
    ]
    request_id = reply.headers["x-request-id"]
    written = await requests_record(stack, request_id)
    assert EMAIL.encode() not in written  # nor the map: it never travels in the envelope
    stream = await sdk.chat.completions.create(
        **chat(f"{FILLER}mail {EMAIL} please {tag}"), stream=True
    )
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces) == f"echo: {FILLER}mail {EMAIL} please {tag}"
    assert f"{FILLER}mail <EMAIL_1> please {tag}" in await history(stack)
