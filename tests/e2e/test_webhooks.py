"""Webhooks end to end: a receiver in the test verifies each message with the
`standardwebhooks` library, or (an endpoint in OpenAI's format) with the `openai` SDK's
`webhooks.unwrap`; retries keep their webhook-id; 410 disables an endpoint; URLs that would
reach inside the network are refused when they are given."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.webhooks import BatchCompletedWebhookEvent, ResponseCompletedWebhookEvent
from standardwebhooks.webhooks import Webhook as Verifier

from aibroker.stores.tenants import new_webhook_secret
from loadtest.stack import Stack
from tests.e2e.conftest import Receiver, running_stack
from tests.services import KafkaService, RedisService
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hook"}]}


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        "AIBROKER_WEBHOOKS_ALLOW_HTTP": "true",
        "AIBROKER_WEBHOOKS_ALLOW": '["127.0.0.0/8"]',  # the test's receiver
        "AIBROKER_WEBHOOKS_SCHEDULE_S": "[0, 0.3, 0.6, 1]",
        "AIBROKER_WEBHOOKS_TIMEOUT_S": "20",
        "AIBROKER_WEBHOOKS_CONCURRENCY": "8",
        "AIBROKER_WEBHOOKS_TENANT_IN_FLIGHT": "2",
        "AIBROKER_BREAKER_MIN_CALLS": "4",
        "AIBROKER_BREAKER_COOLDOWN_S": "60",
    }
    with running_stack(kafka, redis_svc, tmp_path_factory.mktemp("hooks"), extra_env=env) as s:
        yield s


async def tenant(
    stack: Stack, admin: httpx.AsyncClient, **body: Any
) -> tuple[str, str, httpx.AsyncClient]:
    """A new tenant and a client with its key. Its webhook secret is given, or made by the
    admin API when the tenant registers endpoints."""
    name = f"hooks-{uuid.uuid4().hex[:8]}"
    if "webhooks" not in body:
        body["webhook_secrets"] = [new_webhook_secret()]
    made = await admin.put(f"/tenants/{name}", json=body)
    assert made.status_code == 200, made.text
    secret: str = made.json()["webhook_secrets"][0]
    assert secret.startswith("whsec_")
    key = (await admin.post("/keys", json={"tenant": name})).json()["key"]
    client = httpx.AsyncClient(
        base_url=stack.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    return name, secret, client


async def test_a_request_webhook_is_signed_and_carries_the_result(
    stack: Stack, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    _, secret, client = await tenant(stack, admin)
    async with client:
        submitted = await client.post(
            "/v1/requests",
            json={
                "endpoint": "/v1/chat/completions",
                "body": CHAT,
                "webhook": {"url": receiver.url},
            },
        )
    assert submitted.status_code == 202
    await eventually(lambda: _has(receiver, 1), what="the webhook delivered")
    headers, body = receiver.got[0]
    payload = Verifier(secret).verify(body, headers)
    assert payload["type"] == "request.completed"
    assert payload["data"]["id"] == submitted.json()["id"]
    assert payload["data"]["status"] == "succeeded"
    assert payload["data"]["response"]["choices"][0]["message"]["content"] == "echo: hook"


async def test_retries_keep_the_webhook_id_and_are_logged(
    stack: Stack, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.answers = [500, 503]  # then 200
    _, secret, client = await tenant(stack, admin)
    async with client:
        submitted = await client.post(
            "/v1/chat/completions", json=CHAT, headers={"X-Aibroker-Webhook": receiver.url}
        )
    assert submitted.status_code == 200
    await eventually(lambda: _has(receiver, 3), what="three attempts")
    ids = {headers["webhook-id"] for headers, _ in receiver.got}
    assert len(ids) == 1
    for headers, body in receiver.got:
        Verifier(secret).verify(body, headers)
    request_id = submitted.headers["x-request-id"]
    logged = await eventually(lambda: _log(admin, request_id, 3), what="three log entries")
    assert logged is not None
    assert [(e["status"], e["outcome"]) for e in logged] == [
        (500, "retryin"),
        (503, "retryin"),
        (200, "delivered"),
    ]
    again = await admin.post(f"/webhooks/{ids.pop()}/redeliver")
    assert again.status_code == 202
    await eventually(lambda: _has(receiver, 4), what="the redelivery")


async def test_an_endpoint_that_answers_410_is_disabled(
    stack: Stack, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.answers = [410]
    name, _, client = await tenant(stack, admin, webhooks=[{"url": receiver.url}])
    async with client:
        first = await client.post("/v1/chat/completions", json=CHAT)
        assert first.status_code == 200
        await eventually(lambda: _has(receiver, 1), what="the first delivery")
        doc = await eventually(lambda: _disabled(admin, name), what="the endpoint disabled")
        assert doc is not None
        assert doc["webhooks"][0]["disabled_at"] > 0
        # A later request with a webhook of its own: the endpoint's message would go first.
        headers = {"X-Aibroker-Webhook": receiver.url + "2"}
        second = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert second.status_code == 200
        await eventually(lambda: _other(receiver), what="the request's own webhook")
    assert len(receiver.got) == 1  # nothing more to the endpoint after its 410


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hook",
        "http://[::1]:8080/hook",
        "http://167772161/hook",  # 10.0.0.1, decimal
        "http://0xa9fea9fe/latest/meta-data",  # 169.254.169.254, hex
        "ftp://example.com/hook",
    ],
)
async def test_urls_inside_the_network_are_refused_when_given(
    stack: Stack, admin: httpx.AsyncClient, url: str
) -> None:
    _, _, client = await tenant(stack, admin)
    async with client:
        refused = await client.post(
            "/v1/requests",
            json={"endpoint": "/v1/chat/completions", "body": CHAT, "webhook": {"url": url}},
        )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "webhook.url"
    registered = await admin.put("/tenants/x-ssrf", json={"webhooks": [{"url": url}]})
    assert registered.status_code == 400


async def test_a_tenant_without_a_secret_cannot_ask_for_webhooks(
    stack: Stack, receiver: Receiver
) -> None:
    async with httpx.AsyncClient(
        base_url=stack.url, headers={"Authorization": f"Bearer {stack.api_key}"}
    ) as client:
        refused = await client.post(
            "/v1/chat/completions", json=CHAT, headers={"X-Aibroker-Webhook": receiver.url}
        )
    assert refused.status_code == 400
    assert "secret" in refused.json()["error"]["message"]


async def _has(receiver: Receiver, n: int) -> bool:
    return len(receiver.got) >= n


async def _other(receiver: Receiver) -> bool:
    return receiver.other >= 1


async def _log(admin: httpx.AsyncClient, request_id: str, n: int) -> list[dict[str, Any]] | None:
    found = await admin.get(f"/requests/{request_id}/webhooks")
    data: list[dict[str, Any]] = found.json()["data"]
    return data if len(data) >= n else None


async def _disabled(admin: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
    doc: dict[str, Any] = (await admin.get(f"/tenants/{name}")).json()
    return doc if doc["webhooks"][0].get("disabled_at") else None


async def test_a_redirect_is_not_followed(
    stack: Stack, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    _, _, client = await tenant(stack, admin)
    async with client:
        headers = {"X-Aibroker-Webhook": receiver.at("/moved")}
        answer = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
    request_id = answer.headers["x-request-id"]
    logged = await eventually(lambda: _log(admin, request_id, 1), what="the attempt logged")
    assert logged is not None
    assert (logged[0]["status"], logged[0]["outcome"]) == (302, "retryin")
    assert receiver.other == 0  # the redirect's target was never called


async def test_a_dead_receiver_does_not_hold_up_other_tenants(
    stack: Stack, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    """8 delivery slots, 2 per tenant: a tenant whose receiver hangs keeps 2 of them."""
    _, _, stuck = await tenant(stack, admin)
    _, _, other = await tenant(stack, admin)
    async with stuck, other:
        for _ in range(10):
            submit = {"endpoint": "/v1/chat/completions", "body": CHAT}
            hook = {"webhook": {"url": receiver.at("/slow")}}
            assert (await stuck.post("/v1/requests", json=submit | hook)).status_code == 202
        await eventually(lambda: _slow(receiver, 2), what="the hanging receiver called")
        headers = {"X-Aibroker-Webhook": receiver.url}
        assert (await other.post("/v1/chat/completions", json=CHAT, headers=headers)).is_success
        await eventually(lambda: _has(receiver, 1), what="the other tenant's webhook", timeout_s=8)
    assert receiver.slow <= 2  # the stuck tenant never had more than its share in flight


async def _slow(receiver: Receiver, n: int) -> bool:
    return receiver.slow >= n


async def test_retries_pass_the_delay_loop_while_a_breaker_is_open(
    stack: Stack, admin: httpx.AsyncClient, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The dispatcher's delay loop holds back retries of a target whose breaker is open; a
    webhook's retry, which goes through the same loop, must pass untouched."""
    failing = await http.post("/v1/chat/completions", json={**CHAT, "model": "mock/fail-503"})
    assert failing.status_code == 502  # its breaker is open now
    receiver.answers = [500]
    _, _, client = await tenant(stack, admin)
    async with client:
        headers = {"X-Aibroker-Webhook": receiver.url}
        assert (await client.post("/v1/chat/completions", json=CHAT, headers=headers)).is_success
    await eventually(lambda: _has(receiver, 2), what="the retry delivered")


def _sdk(stack: Stack, client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    """The `openai` SDK with the key of `client`'s tenant."""
    key = client.headers["Authorization"].removeprefix("Bearer ")
    return openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0)


async def test_an_openai_endpoint_gets_a_batch_end_the_sdk_unwraps(
    stack: Stack, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    """OpenAI's shape for an endpoint that asked for it: the batch's end only (its chat lines
    and a chat completion have no OpenAI event), verified as an OpenAI receiver would."""
    hooks = [{"url": receiver.url, "format": "openai"}, {"url": receiver.url + "2"}]
    _, secret, client = await tenant(stack, admin, webhooks=hooks)
    async with client, _sdk(stack, client) as sdk:
        chat = await sdk.chat.completions.create(
            model="mock/echo", messages=[{"role": "user", "content": "hook"}]
        )
        assert chat.choices[0].message.content == "echo: hook"
        # The broker's endpoint, after OpenAI's in the list, heard of the chat: OpenAI's
        # endpoint was passed over for it, not yet to come.
        await eventually(lambda: _other(receiver), what="the chat's request.completed")
        lines = [
            {
                "custom_id": f"line-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "mock/echo", "messages": [{"role": "user", "content": "b"}]},
            }
            for i in range(2)
        ]
        jsonl = b"\n".join(orjson.dumps(line) for line in lines) + b"\n"
        uploaded = await sdk.files.create(file=("in.jsonl", jsonl), purpose="batch")
        batch = await sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        await eventually(lambda: _has(receiver, 1), what="the batch.completed event")
    headers, body = receiver.got[0]
    event = openai.OpenAI(api_key="unused", webhook_secret=secret).webhooks.unwrap(body, headers)
    assert isinstance(event, BatchCompletedWebhookEvent)
    assert event.data.id == batch.id
    assert event.id.startswith("evt_")
    assert orjson.loads(body)["object"] == "event"
    assert len(receiver.got) == 1  # nothing for the chat completion nor the batch's lines
    with pytest.raises(openai.InvalidWebhookSignatureError):
        openai.OpenAI(api_key="unused", webhook_secret=new_webhook_secret()).webhooks.unwrap(
            body, headers
        )


@pytest.mark.parametrize(
    ("endpoint", "unknown"),
    [
        ({"format": "openai", "events": ["response.completed", "request.completed"]}, "request"),
        ({"events": ["response.completed"]}, "response.completed"),
        ({"format": "openai", "events": ["response.done"]}, "response.done"),
    ],
)
async def test_an_unknown_event_type_is_a_400_naming_it(
    stack: Stack, admin: httpx.AsyncClient, endpoint: dict[str, Any], unknown: str
) -> None:
    name, _, client = await tenant(stack, admin)
    await client.aclose()
    hooks = {"webhooks": [{"url": "https://hooks.example.com/h"} | endpoint]}
    for path in (f"/tenants/{name}", f"/tenants/{name}/webhooks"):
        refused = await admin.put(path, json=hooks)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert f"unknown event type '{unknown}" in error["message"]
        assert error["param"].startswith("webhooks")
    assert (await admin.get(f"/tenants/{name}")).json()["webhooks"] == []  # nothing kept


async def test_a_background_responses_end_reaches_an_openai_endpoint(
    stack: Stack, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The stock SDK's background pattern: create, then hear `response.completed`."""
    hooks = [{"url": receiver.url, "format": "openai", "events": ["response.completed"]}]
    _, secret, client = await tenant(stack, admin, webhooks=hooks)
    async with client, _sdk(stack, client) as sdk:
        created = await sdk.responses.create(model="mock/echo", input="hook", background=True)
        assert created.id.startswith("resp_")
        await eventually(lambda: _has(receiver, 1), what="the response.completed event")
        headers, body = receiver.got[0]
        sdk_sync = openai.OpenAI(api_key="unused", webhook_secret=secret)
        event = sdk_sync.webhooks.unwrap(body, headers)
        assert isinstance(event, ResponseCompletedWebhookEvent)
        assert event.data.id == created.id
        done = await sdk.responses.retrieve(event.data.id)
        assert done.status == "completed"
        assert done.output_text == "echo: hook"
