"""OpenAI's Responses API end to end, through the unmodified `openai` SDK: `own` is the mock
served as a provider with `/v1/responses` of its own (the body goes as it came), `mock`,
`claude` and `gemini` the same mock through its chat, Anthropic and Gemini APIs (the broker
translates to chat and back)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from loadtest.stack import Stack
from tests.e2e.conftest import until_ended, wire_body, with_own_responses_api
from tests.services import KafkaService, RedisService

pytestmark = pytest.mark.e2e

MODELS = ["own/echo", "mock/echo", "claude/echo", "gemini/echo"]
"""One model per way a target is served: as it came, over OpenAI chat, Anthropic, Gemini."""
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SCHEMA: Any = {
    "type": "object",
    "properties": {"echo": {"type": "string"}},
    "required": ["echo"],
    "additionalProperties": False,
}


ROUTES = """
aliases:
  resilient:                   # the provider's own Responses API is down: Anthropic, translated
    - {provider: own, model: fail-503}
    - {provider: claude, model: echo}
"""


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The usual providers plus `own` and `ownsdk`: the mock's OpenAI API with `responses_api`."""
    running = Stack(
        kafka.settings, redis_svc.url, tmp_path_factory.mktemp("responses"), routes_yaml=ROUTES
    )
    with_own_responses_api(running)
    running.extra_env["AIBROKER_CACHE_ENABLED"] = "true"  # deterministic requests only
    try:
        running.start()
        yield running
    finally:
        running.stop()


async def test_a_synchronous_response_over_chat(sdk: openai.AsyncOpenAI, stack: Stack) -> None:
    response = await sdk.responses.create(
        model="mock/echo",
        input="Hello there",
        instructions="Be brief.",
        max_output_tokens=50,
        temperature=0.3,
        top_p=0.9,
    )
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == "echo: Hello there"
    assert response.usage is not None
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    assert response.usage.input_tokens_details.cached_tokens == 0
    wire = await wire_body(stack, "openai")
    assert wire["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello there"},
    ]
    assert (wire["max_completion_tokens"], wire["temperature"], wire["top_p"]) == (50, 0.3, 0.9)
    assert (await sdk.responses.retrieve(response.id)).output_text == "echo: Hello there"


@pytest.mark.parametrize("model", ["own/echo", "ownsdk/echo"])
async def test_a_provider_with_its_own_responses_api_gets_the_body_as_sent(
    sdk: openai.AsyncOpenAI, stack: Stack, model: str
) -> None:
    response = await sdk.responses.create(
        model=model, input="Hi", instructions="Be brief.", max_output_tokens=40
    )
    assert response.id.startswith("resp_")  # the broker's id, not the provider's
    assert not response.id.startswith("resp_mock")
    assert response.output_text == "echo: Hi"
    assert response.usage is not None
    assert response.usage.input_tokens > 0
    wire = await wire_body(stack, "responses")
    assert wire == {
        "model": "echo",
        "input": "Hi",
        "instructions": "Be brief.",
        "max_output_tokens": 40,
    }


@pytest.mark.parametrize("model", MODELS)
async def test_background_then_poll(sdk: openai.AsyncOpenAI, model: str) -> None:
    queued = await sdk.responses.create(model=model, input="later please", background=True)
    assert queued.status == "queued"
    assert queued.background is True
    done = await until_ended(sdk, queued.id)
    assert (done.id, done.status) == (queued.id, "completed")
    assert done.output_text == "echo: later please"
    assert done.background is True


@pytest.mark.parametrize("model", MODELS)
async def test_a_tool_call_round_trip(sdk: openai.AsyncOpenAI, model: str) -> None:
    asked: list[Any] = [{"role": "user", "content": "call it for Paris"}]
    first = await sdk.responses.create(model=model, input=asked, tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"echo": "call it for Paris"}
    history = [
        *asked,
        *(item.model_dump(exclude_none=True) for item in first.output),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"},
    ]
    second = await sdk.responses.create(model=model, input=history, tools=[WEATHER])
    assert second.status == "completed"
    assert "sunny, 21C" in second.output_text
    if not model.startswith("gemini/"):  # Gemini names a function's result by the function
        assert second.output_text == f"echo: [tool {call.call_id} said sunny, 21C]"


@pytest.mark.parametrize("model", MODELS)
async def test_json_schema_output(sdk: openai.AsyncOpenAI, model: str) -> None:
    response = await sdk.responses.create(
        model=model,
        input="give json",
        text={"format": {"type": "json_schema", "name": "echo", "schema": SCHEMA, "strict": True}},
    )
    assert orjson.loads(response.output_text) == {"echo": "give json"}


async def test_images_reach_the_model(sdk: openai.AsyncOpenAI, stack: Stack) -> None:
    image = "data:image/png;base64,iVBORw0K"
    content: Any = [
        {"type": "input_text", "text": "what is it?"},
        {"type": "input_image", "image_url": image, "detail": "low"},
    ]
    await sdk.responses.create(model="mock/echo", input=[{"role": "user", "content": content}])
    wire = await wire_body(stack, "openai")
    assert wire["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": image, "detail": "low"},
    }


async def test_an_answer_cut_by_its_cap_is_incomplete(sdk: openai.AsyncOpenAI) -> None:
    response = await sdk.responses.create(model="mock/echo", input="a b c", max_output_tokens=1)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


async def test_cancel_a_background_response(sdk: openai.AsyncOpenAI) -> None:
    queued = await sdk.responses.create(model="mock/hang", input="never", background=True)
    cancelled = await sdk.responses.cancel(queued.id)
    assert (cancelled.id, cancelled.status) == (queued.id, "cancelled")
    assert (await sdk.responses.retrieve(queued.id)).status == "cancelled"


async def test_a_failed_background_response_carries_its_error(sdk: openai.AsyncOpenAI) -> None:
    queued = await sdk.responses.create(model="mock/fail-400", input="no", background=True)
    failed = await until_ended(sdk, queued.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.message


async def test_delete_forgets_the_response(
    sdk: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    response = await sdk.responses.create(model="mock/echo", input="forget me")
    deleted = await http.delete(f"/v1/responses/{response.id}")
    assert deleted.json() == {"id": response.id, "object": "response.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(response.id)
    other = await sdk.responses.create(model="mock/echo", input="and me")
    await sdk.responses.delete(other.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.retrieve(other.id)


async def test_another_tenants_response_is_not_found(sdk: openai.AsyncOpenAI, stack: Stack) -> None:
    response = await sdk.responses.create(model="mock/echo", input="mine")
    async with openai.AsyncOpenAI(
        base_url=f"{stack.url}/v1", api_key=stack.new_key("tenant-b"), max_retries=0
    ) as other:
        with pytest.raises(openai.NotFoundError) as missing:
            await other.responses.retrieve(response.id)
        with pytest.raises(openai.NotFoundError):
            await other.responses.cancel(response.id)
    assert missing.value.body["param"] == "response_id"  # type: ignore[index]


@pytest.mark.parametrize(
    ("model", "extra", "param"),
    [
        ("mock/echo", {"background": True, "store": False}, "store"),
        ("claude/echo", {"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ],
)
async def test_what_cannot_be_served_is_a_400_naming_it(
    http: httpx.AsyncClient, model: str, extra: dict[str, Any], param: str
) -> None:
    refused = await http.post("/v1/responses", json={"model": model, "input": "hi", **extra})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == param


async def test_prefer_respond_async_and_idempotency(http: httpx.AsyncClient) -> None:
    body = {"model": "mock/echo", "input": "once"}
    headers = {"Prefer": "respond-async", "Idempotency-Key": "resp-key-1"}
    first = await http.post("/v1/responses", json=body, headers=headers)
    assert first.status_code == 202
    assert (first.json()["object"], first.json()["status"]) == ("response", "queued")
    assert first.headers["location"] == f"/v1/responses/{first.json()['id']}"
    again = await http.post("/v1/responses", json=body, headers=headers)
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize("model", ["mock/echo", "claude/echo", "gemini/echo"])
async def test_a_streamed_response(sdk: openai.AsyncOpenAI, model: str) -> None:
    stream = await sdk.responses.create(model=model, input="one two three", stream=True)
    events = [event async for event in stream]
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "echo: one two three"
    assert len(deltas) > 1  # relayed piece by piece, not at the end
    done = events[-1].response  # type: ignore[union-attr]
    assert done.output_text == "echo: one two three"
    assert done.usage is not None
    assert done.usage.output_tokens > 0
    # The stream ends by the reply topic; the stored result lands a moment later.
    assert (await until_ended(sdk, done.id)).output_text == "echo: one two three"


@pytest.mark.parametrize("model", ["mock/echo", "own/echo"])  # translated, relayed
async def test_the_sdk_stream_helper_assembles_the_events(
    sdk: openai.AsyncOpenAI, model: str
) -> None:
    """`responses.stream()` checks that each event fits the ones before it."""
    async with sdk.responses.stream(model=model, input="in order") as stream:
        texts = [
            event.delta async for event in stream if event.type == "response.output_text.delta"
        ]
        final = await stream.get_final_response()
    assert "".join(texts) == final.output_text == "echo: in order"


@pytest.mark.parametrize("model", ["mock/echo", "own/echo"])
async def test_a_streamed_tool_call(sdk: openai.AsyncOpenAI, model: str) -> None:
    stream = await sdk.responses.create(
        model=model, input="call it for Rome", tools=[WEATHER], stream=True
    )
    events = [event async for event in stream]
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [orjson.loads(e.arguments) for e in done] == [{"echo": "call it for Rome"}]
    final = events[-1].response  # type: ignore[union-attr]
    assert [item.type for item in final.output] == ["function_call"]


async def test_a_cached_answer_is_a_response_of_its_own(http: httpx.AsyncClient) -> None:
    text = f"cache me {uuid.uuid4().hex}"
    body = {"model": "mock/echo", "input": text, "temperature": 0}
    first = await http.post("/v1/responses", json=body)
    second = await http.post("/v1/responses", json=body)
    assert (first.headers["x-aibroker-cache"], second.headers["x-aibroker-cache"]) == (
        "miss",
        "hit",
    )
    assert second.json()["id"] == second.headers["x-aibroker-request-id"] != first.json()["id"]
    assert second.json()["output"][0]["content"][0]["text"] == f"echo: {text}"
    streamed = await http.post("/v1/responses", json={**body, "stream": True})
    events = [
        orjson.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: ")
    ]
    assert events[-1]["type"] == "response.completed"
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == f"echo: {text}"
    assert events[-1]["response"]["id"] == streamed.headers["x-aibroker-request-id"]


async def test_a_background_response_outlives_a_failing_provider(sdk: openai.AsyncOpenAI) -> None:
    """The first target keeps answering 503: retried, then fallen back to a target served over
    chat; the response ends completed, in the Responses shape."""
    queued = await sdk.responses.create(model="resilient", input="still here", background=True)
    done = await until_ended(sdk, queued.id)
    assert (done.id, done.status) == (queued.id, "completed")
    assert done.output_text == "echo: still here"


async def test_previous_response_id_continues_the_conversation(
    sdk: openai.AsyncOpenAI, stack: Stack
) -> None:
    first = await sdk.responses.create(model="mock/echo", input="my name is Ada")
    second = await sdk.responses.create(
        model="mock/echo", input="what is my name?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    assert second.output_text == "echo: what is my name?"
    wire = await wire_body(stack, "openai")  # the model saw the first turn
    assert wire["messages"] == [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "echo: my name is Ada"},
        {"role": "user", "content": "what is my name?"},
    ]
    items = await sdk.responses.input_items.list(second.id)
    shown = [item.model_dump() for item in items.data]
    assert [(i["role"], i["content"][0]["text"]) for i in shown] == [("user", "what is my name?")]
    listed = (await sdk.responses.input_items.list(first.id, order="asc")).model_dump()
    assert listed["first_id"] == listed["last_id"] == listed["data"][0]["id"]
    assert listed["has_more"] is False


async def test_an_unknown_or_unstored_previous_response_is_not_found(
    sdk: openai.AsyncOpenAI, stack: Stack
) -> None:
    unstored = await sdk.responses.create(model="mock/echo", input="forget", store=False)
    for named in ("resp_nope", unstored.id):
        with pytest.raises(openai.NotFoundError) as missing:
            await sdk.responses.create(model="mock/echo", input="x", previous_response_id=named)
        assert missing.value.body["param"] == "previous_response_id"  # type: ignore[index]
    mine = await sdk.responses.create(model="mock/echo", input="mine only")
    async with openai.AsyncOpenAI(
        base_url=f"{stack.url}/v1", api_key=stack.new_key("tenant-b"), max_retries=0
    ) as other:
        with pytest.raises(openai.NotFoundError):
            await other.responses.create(model="mock/echo", input="x", previous_response_id=mine.id)
        with pytest.raises(openai.NotFoundError):
            await other.responses.input_items.list(mine.id)


@pytest.mark.parametrize("model", ["mock/echo", "own/echo"])  # translated, relayed
async def test_a_background_stream_resumes_from_a_sequence_number(
    sdk: openai.AsyncOpenAI, model: str
) -> None:
    stream = await sdk.responses.create(
        model=model, input="one two three four", background=True, stream=True
    )
    events = [event async for event in stream]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert (events[0].type, events[-1].type) == ("response.created", "response.completed")
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "echo: one two three four"
    response_id = events[0].response.id  # type: ignore[union-attr]
    resumed = await sdk.responses.retrieve(response_id, stream=True, starting_after=3)
    again = [event async for event in resumed]
    assert [e.model_dump() for e in again] == [e.model_dump() for e in events[4:]]
    past = await sdk.responses.retrieve(response_id, stream=True, starting_after=10_000)
    assert [e.type async for e in past] == ["response.completed"]


async def test_a_running_background_stream_is_followed_live(
    sdk: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    """A resume while the response runs follows it to the end; a background response read
    before its end carries its request's fields."""
    queued = await http.post(
        "/v1/responses",
        json={
            "model": "mock/latency-1500",
            "input": "wait",
            "instructions": "Hi.",
            "background": True,
        },
    )
    response_id = queued.json()["id"]
    running = await sdk.responses.retrieve(response_id)
    assert (running.instructions, running.model) == ("Hi.", "mock/latency-1500")
    resumed = await sdk.responses.retrieve(response_id, stream=True)
    kinds = [event.type async for event in resumed]
    assert (kinds[0], kinds[-1]) == ("response.created", "response.completed")
