"""Streamed responses end to end, through the unmodified `openai` SDK: a provider with a
Responses API of its own (`own`, `ownsdk`: the mock's, with `responses_api`) streams its typed
events through the broker (numbered in the broker's stream, under the broker's id, the final
response stored as for a plain call); a synchronous stream read by `GET /v1/responses/{id}`
while it runs answers the response in progress, and as it ended right after its end event;
batch lines continue stored responses; a deletion is written to the audit log (which keeps it
through a rebuild of Redis); a stored response outlives its request's state; operators list
the background responses in flight."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from aibroker.stores.keyspace import request_key
from loadtest.stack import Stack
from tests.e2e.conftest import until_ended, wire_body, with_own_responses_api
from tests.services import KafkaService, RedisService, redis_client
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The usual providers plus `own` and `ownsdk`: the mock's OpenAI API with `responses_api`."""
    running = Stack(kafka.settings, redis_svc.url, tmp_path_factory.mktemp("responses-stream"))
    with_own_responses_api(running)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("model", ["own/echo", "ownsdk/echo"])
async def test_a_provider_streams_its_own_events_through(
    sdk: openai.AsyncOpenAI, stack: Stack, model: str
) -> None:
    stream = await sdk.responses.create(model=model, input="one two three", stream=True)
    events = [event async for event in stream]
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.created") == kinds.count("response.completed") == 1
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert "".join(e.delta for e in deltas) == "echo: one two three"
    assert len(deltas) == 4  # the provider's own pieces, one word each
    created, done = events[0].response, events[-1].response  # type: ignore[union-attr]
    assert created.id == done.id
    assert done.id.startswith("resp_")
    assert not done.id.startswith("resp_mock")
    assert done.output_text == "echo: one two three"
    assert {e.item_id for e in deltas} == {done.output[0].id}  # the provider's item id
    assert done.usage is not None
    assert done.usage.output_tokens > 0
    wire = await wire_body(stack, "responses")
    assert (wire["model"], wire["input"], wire["stream"]) == ("echo", "one two three", True)
    stored = await until_ended(sdk, done.id)  # stored as a plain call's is
    assert (stored.status, stored.output_text) == ("completed", "echo: one two three")


async def test_a_provider_stream_broken_midway_ends_failed(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.responses.create(model="own/breaks-2", input="a b c d e", stream=True)
    events = [event async for event in stream]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "echo: a"  # what came before the break, once
    assert events[-1].type == "response.failed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    failed = await until_ended(sdk, events[0].response.id)  # type: ignore[union-attr]
    assert failed.status == "failed"


@pytest.mark.parametrize("model", ["mock/pace-300", "own/pace-300"])
async def test_a_running_stream_reads_in_progress(
    sdk: openai.AsyncOpenAI, http: httpx.AsyncClient, model: str
) -> None:
    """Read while its words are still coming: the response in progress, with its request's
    fields; read after its end event: the response as it ended."""
    words = "one two three four five six"
    stream = await sdk.responses.create(
        model=model, input=words, instructions="Be slow.", stream=True
    )
    seen: list[Any] = []
    async for event in stream:
        seen.append(event)
        if event.type == "response.output_text.delta":
            response_id = seen[0].response.id
            running = await http.get(f"/v1/responses/{response_id}")
            assert running.status_code == 200
            doc = running.json()
            assert (doc["id"], doc["status"]) == (response_id, "in_progress")
            assert (doc["model"], doc["instructions"]) == (model, "Be slow.")
            break
    rest = [event async for event in stream]
    assert rest[-1].type == "response.completed"
    ended = await sdk.responses.retrieve(seen[0].response.id)
    assert (ended.status, ended.output_text) == ("completed", f"echo: {words}")


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(line) for line in lines) + b"\n"


async def test_batch_lines_continue_a_stored_response(
    sdk: openai.AsyncOpenAI, stack: Stack
) -> None:
    """`previous_response_id` on a `/v1/responses` batch line: the model sees the earlier
    turns, as on the HTTP path; another tenant's or an unknown id fails its line with 404."""
    first = await sdk.responses.create(model="mock/echo", input="my name is Ada")
    async with openai.AsyncOpenAI(
        base_url=f"{stack.url}/v1", api_key=stack.new_key("tenant-b"), max_retries=0
    ) as other:
        foreign = await other.responses.create(model="mock/echo", input="not yours")
    asked = {"cont": first.id, "foreign": foreign.id, "unknown": "resp_nope"}
    lines = [
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/responses",
            "body": {
                "model": "mock/echo",
                "input": "what is my name?",
                "previous_response_id": named,
            },
        }
        for custom_id, named in asked.items()
    ]
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/responses",
        completion_window="24h",
    )

    async def ended() -> bool:
        found = await sdk.batches.retrieve(batch.id)
        return found.status in ("completed", "failed", "expired")

    await eventually(ended, what=f"{batch.id} ended", timeout_s=60)
    batch = await sdk.batches.retrieve(batch.id)
    assert batch.status == "completed"
    assert batch.output_file_id is not None
    assert batch.error_file_id is not None
    wire = await wire_body(stack, "openai")  # the one line that reached the model
    assert wire["messages"] == [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "echo: my name is Ada"},
        {"role": "user", "content": "what is my name?"},
    ]
    content = await sdk.files.content(batch.output_file_id)
    [done] = [orjson.loads(line) for line in content.read().splitlines()]
    assert done["custom_id"] == "cont"
    body = done["response"]["body"]
    assert (body["object"], body["status"]) == ("response", "completed")
    assert body["previous_response_id"] == first.id
    errors = await sdk.files.content(batch.error_file_id)
    failed = {(line := orjson.loads(raw))["custom_id"]: line for raw in errors.read().splitlines()}
    assert set(failed) == {"foreign", "unknown"}
    for line in failed.values():
        assert line["response"]["status_code"] == 404
        assert line["response"]["body"]["error"]["param"] == "previous_response_id"


async def test_a_deletion_is_written_to_the_audit_log(
    sdk: openai.AsyncOpenAI, stack: Stack
) -> None:
    """What a rebuild of Redis reads to keep a deleted response deleted
    (`tests/integration/test_responses_rebuild.py`)."""
    response = await sdk.responses.create(model="mock/echo", input="forget me")
    await sdk.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(response.id)
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"action": "response.delete", "limit": 500}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as admin:
        while True:  # oldest first, a page at a time
            page = (await admin.get("/admin/v1/audit", params=params)).json()
            entries += [e for e in page["data"] if e["target"] == response.id]
            if not page["has_more"]:
                break
            params["after"] = page["next_after"]
    assert [(e["tenant"], e["outcome"]) for e in entries] == [("tenant-a", "ok")]


async def test_a_stored_response_outlives_its_request_state(
    sdk: openai.AsyncOpenAI, stack: Stack
) -> None:
    """Past the results' TTL (its state and result dropped from Redis, as their TTL does), a
    stored response still reads as it ended, continues a conversation and is deleted."""
    first = await sdk.responses.create(model="mock/echo", input="keep me", max_output_tokens=1)
    assert first.status == "incomplete"
    redis = redis_client(stack.redis_url)
    try:

        async def recorded() -> bool:
            return bool(await redis.hexists(request_key("rsp", first.id), "response"))

        await eventually(recorded, what="the sink recorded the response")
        await redis.delete(request_key("req", first.id), request_key("res", first.id))
    finally:
        await redis.aclose()
    kept = await sdk.responses.retrieve(first.id)
    assert (kept.id, kept.status, kept.output_text) == (first.id, "incomplete", "echo:")
    assert kept.usage == first.usage
    cancelled = await sdk.responses.cancel(first.id)  # ended: answered as it ended
    assert cancelled.status == "incomplete"
    items = await sdk.responses.input_items.list(first.id)
    assert [item.model_dump()["content"][0]["text"] for item in items.data] == ["keep me"]
    second = await sdk.responses.create(
        model="mock/echo", input="and then?", previous_response_id=first.id
    )
    assert second.status == "completed"
    await sdk.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(first.id)


@pytest.mark.parametrize("model", ["own/echo", "claude/echo"])
async def test_a_background_response_outlives_a_provider_outage(
    sdk: openai.AsyncOpenAI, stack: Stack, model: str
) -> None:
    """The provider answers 503 to everything for a while: the background response is
    retried through it and ends `completed` once the provider is back, nothing lost."""
    text = f"through the outage {model}"
    async with httpx.AsyncClient(base_url=stack.mock_url, timeout=10) as mock:
        await mock.post("/_control", json={"error_rate": 1.0, "error_status": 503})
        try:
            started = time.time()
            queued = await sdk.responses.create(model=model, input=text, background=True)

            async def refused_twice() -> bool:  # this module's tests run one at a time
                calls = (await mock.get("/_history")).json()["calls"]
                return sum(1 for call in calls if call["at"] >= started) >= 2

            await eventually(refused_twice, what="two calls refused", timeout_s=30)
            assert (await sdk.responses.retrieve(queued.id)).status in ("queued", "in_progress")
        finally:
            await mock.post("/_control", json={})
    done = await until_ended(sdk, queued.id)
    assert (done.id, done.status, done.output_text) == (queued.id, "completed", f"echo: {text}")


async def test_background_responses_in_flight_are_listed_for_operators(
    sdk: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    """`GET /admin/v1/responses`: a running background response is listed under its tenant,
    and gone once it ended; another tenant's listing does not hold it."""
    running = await sdk.responses.create(
        model="mock/latency-1500", input="in flight", background=True
    )
    listed = (await admin.get("/responses")).json()["data"]
    [mine] = [r for r in listed if r["id"] == running.id]
    assert (mine["tenant"], mine["model"]) == ("tenant-a", "mock/latency-1500")
    assert mine["status"] in ("queued", "in_progress")
    other = (await admin.get("/responses", params={"tenant": "tenant-b"})).json()["data"]
    assert running.id not in {r["id"] for r in other}
    await until_ended(sdk, running.id)
    after = (await admin.get("/responses")).json()["data"]
    assert running.id not in {r["id"] for r in after}
