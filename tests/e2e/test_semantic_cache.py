"""The semantic cache end to end, with the real embeddings pool (all-MiniLM-L6-v2) and Qdrant's
local mode in the dispatcher: a paraphrase of a cached prompt is answered with its answer
(`x-aibroker-cache: semantic` and the score, in the header, the status document, a stream and
a batch line), and never a prompt below the threshold, a hard negative the guard refuses
("5 km to miles" / "5 miles to km"), the same prompt under another system prompt, a longer
conversation than the limit, or another tenant's. The embeddings requests the cache makes
announce nothing to the tenant's webhooks.

Every test has a system prompt of its own, so no test's points are another's neighbours."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from loadtest.stack import Stack
from tests.e2e.conftest import Receiver, running_stack
from tests.e2e.test_batches import ended, jsonl, start_batch
from tests.services import KafkaService, RedisService
from tests.waiting import eventually

pytest.importorskip("sentence_transformers", reason="needs the [embeddings] extra")
pytest.importorskip("qdrant_client", reason="needs the [embeddings] extra")

pytestmark = pytest.mark.e2e

CACHE, SCORE = "x-aibroker-cache", "x-aibroker-cache-score"
HOOKED = "semantic-hooks"
"""A tenant with a webhook endpoint registered (the test of no webhook for the embeddings)."""


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        "AIBROKER_CACHE_ENABLED": "true",
        "AIBROKER_CACHE_SEMANTIC_TENANTS": orjson.dumps(["tenant-a", "tenant-b", HOOKED]).decode(),
        "AIBROKER_CACHE_SEMANTIC_QDRANT_URL": ":memory:",
        # The default (1 s) bounds the latency a lookup may add; on a CI machine shared with
        # other suites an embedding may take longer, and a lookup cut short is a plain miss,
        # which would fail the hits below for the wrong reason.
        "AIBROKER_CACHE_SEMANTIC_TIMEOUT_S": "10",
        "AIBROKER_BATCH_EXPAND_PER_S": "200",
        "AIBROKER_WEBHOOKS_ALLOW_HTTP": "true",
        "AIBROKER_WEBHOOKS_ALLOW": '["127.0.0.0/8"]',
    }
    logs = tmp_path_factory.mktemp("semantic")
    with running_stack(kafka, redis_svc, logs, embeddings=True, extra_env=env) as running:
        yield running


@pytest.fixture(scope="module")
async def warm(stack: Stack) -> None:
    """The embeddings pool answering (a fresh pool loads its model and gets its partitions)."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=120) as client:
        body = {"model": "all-minilm-l6-v2", "input": "warm up"}
        answer = await client.post("/v1/embeddings", json=body)
        assert answer.status_code == 200, answer.text


def ask(text: str, system: str, **extra: Any) -> dict[str, Any]:
    """A deterministic chat body: `system`'s prompt, then one user turn."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
    return {"model": "mock/echo", "messages": messages, "temperature": 0, **extra}


def fresh() -> str:
    return f"You answer briefly. Session {uuid.uuid4().hex}."


async def chat(http: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    answer = await http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    return answer


async def calls(stack: Stack, text: str) -> int:
    """How many times the mock provider was asked `text`."""
    async with httpx.AsyncClient() as client:
        history = (await client.get(f"{stack.mock_url}/_history")).json()["calls"]
    return sum(c["text"] == text for c in history)


PROMPT, PARAPHRASE = "How do I reset my password?", "How can I reset my password?"
UNRELATED = "How do I change my email address?"


@pytest.mark.usefixtures("warm")
async def test_a_paraphrase_is_served_with_its_score(stack: Stack, sdk: openai.AsyncOpenAI) -> None:
    system = fresh()
    first = await sdk.chat.completions.with_raw_response.create(**ask(PROMPT, system))
    second = await sdk.chat.completions.with_raw_response.create(**ask(PARAPHRASE, system))
    assert (first.headers[CACHE], second.headers[CACHE]) == ("miss", "semantic")
    assert 0.9 < float(second.headers[SCORE]) <= 1.0
    assert SCORE not in first.headers
    one, two = first.parse(), second.parse()
    assert two.id == one.id  # the first prompt's answer: the mock was not asked again
    assert two.choices[0].message.content == f"echo: {PROMPT}"
    assert second.headers["x-aibroker-cost"] == "0"
    assert two.usage is not None
    assert await calls(stack, PARAPHRASE) == 0


@pytest.mark.usefixtures("warm")
async def test_below_the_threshold_is_a_miss(stack: Stack, http: httpx.AsyncClient) -> None:
    system = fresh()
    await chat(http, ask(PROMPT, system))
    other = await chat(http, ask(UNRELATED, system))
    assert other.headers[CACHE] == "miss"
    assert other.json()["choices"][0]["message"]["content"] == f"echo: {UNRELATED}"


@pytest.mark.usefixtures("warm")
async def test_a_hard_negative_is_a_miss(stack: Stack, http: httpx.AsyncClient) -> None:
    """Near by embedding (cosine 0.99 with all-MiniLM-L6-v2), opposite in meaning: the guard
    refuses it (`aibroker/rules/semantic.py`)."""
    system = fresh()
    await chat(http, ask("Convert 5 km to miles", system))
    swapped = await chat(http, ask("Convert 5 miles to km", system))
    assert swapped.headers[CACHE] == "miss"
    assert swapped.json()["choices"][0]["message"]["content"] == "echo: Convert 5 miles to km"


@pytest.mark.usefixtures("warm")
async def test_another_system_prompt_never_matches(http: httpx.AsyncClient) -> None:
    await chat(http, ask(PROMPT, fresh()))
    elsewhere = await chat(http, ask(PARAPHRASE, fresh()))
    assert elsewhere.headers[CACHE] == "miss"
    other_params = await chat(http, ask(PARAPHRASE, fresh(), max_tokens=50))
    assert other_params.headers[CACHE] == "miss"


@pytest.mark.usefixtures("warm")
async def test_a_longer_conversation_is_not_looked_up(http: httpx.AsyncClient) -> None:
    system = fresh()
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]

    def long(text: str) -> dict[str, Any]:
        body = ask(text, system)
        body["messages"][1:1] = turns  # system, user, assistant, user: over the limit of 2
        return body

    await chat(http, long(PROMPT))
    again = await chat(http, long(PARAPHRASE))
    assert again.headers[CACHE] == "miss"
    assert (await chat(http, long(PROMPT))).headers[CACHE] == "hit"  # the exact cache still


@pytest.mark.usefixtures("warm")
async def test_one_tenant_never_gets_anothers_answer(stack: Stack, http: httpx.AsyncClient) -> None:
    system = fresh()
    await chat(http, ask(PROMPT, system))
    assert (await chat(http, ask(PARAPHRASE, system))).headers[CACHE] == "semantic"
    key = stack.new_key("tenant-b")
    async with httpx.AsyncClient(
        base_url=stack.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as other:
        theirs = await chat(other, ask(PARAPHRASE, system))
    assert theirs.headers[CACHE] == "miss"


@pytest.mark.usefixtures("warm")
async def test_status_document_and_stream_say_semantic(
    sdk: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    system = fresh()
    await chat(http, ask(PROMPT, system))
    submitted = await http.post(
        "/v1/requests", json={"endpoint": "/v1/chat/completions", "body": ask(PARAPHRASE, system)}
    )
    assert submitted.status_code == 202, submitted.text
    polled = await http.get(submitted.json()["url"], params={"wait": 30})
    doc = polled.json()
    assert (doc["status"], doc["cache"]) == ("succeeded", "semantic"), doc
    assert doc["cache_score"] > 0.9
    assert doc["response"]["choices"][0]["message"]["content"] == f"echo: {PROMPT}"

    body = ask("How could I reset my password?", system, stream=True)
    async with sdk.chat.completions.with_streaming_response.create(**body) as streamed:
        assert streamed.headers[CACHE] == "semantic"
        assert float(streamed.headers[SCORE]) > 0.9
        chunks = [c async for c in await streamed.parse()]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"echo: {PROMPT}"


@pytest.mark.usefixtures("warm")
async def test_a_batch_line_says_semantic(sdk: openai.AsyncOpenAI, http: httpx.AsyncClient) -> None:
    system = fresh()
    await chat(http, ask(PROMPT, system))
    line = {
        "custom_id": "paraphrase",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": ask(PARAPHRASE, system),
    }
    done = await ended(sdk, (await start_batch(sdk, jsonl([line]))).id)
    assert done.status == "completed", done
    assert done.output_file_id is not None
    content = await sdk.files.content(done.output_file_id)
    (row,) = [orjson.loads(r) for r in content.content.splitlines() if r]
    assert row["x_aibroker_cache"] == "semantic"
    assert row["x_aibroker_cache_score"] > 0.9
    assert row["response"]["body"]["choices"][0]["message"]["content"] == f"echo: {PROMPT}"


@pytest.fixture
async def hooked(
    stack: Stack, admin: httpx.AsyncClient, receiver: Receiver
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the tenant whose every request's end goes to `receiver`."""
    made = await admin.put(f"/tenants/{HOOKED}", json={"webhooks": [{"url": receiver.url}]})
    assert made.status_code == 200, made.text
    key = (await admin.post("/keys", json={"tenant": HOOKED})).json()["key"]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as client:
        yield client


@pytest.mark.usefixtures("warm")
async def test_the_embeddings_it_asks_for_announce_nothing(
    hooked: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Three chats, three embeddings (each made before its chat is sent on): the tenant's
    endpoint hears of the three chats alone."""
    system = fresh()
    answers = [await chat(hooked, ask(text, system)) for text in (PROMPT, PARAPHRASE, UNRELATED)]
    assert [a.headers[CACHE] for a in answers] == ["miss", "semantic", "miss"]
    ids = {a.headers["x-request-id"] for a in answers}

    async def told() -> set[str]:
        heard = {orjson.loads(body)["data"]["id"] for _, body in receiver.got}
        return heard if ids <= heard else set()

    heard = await eventually(told, what="the three chats announced", timeout_s=30)
    assert heard == ids
