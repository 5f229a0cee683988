"""The two OpenAI-compatible clients, the lean aiohttp path and the official SDK, against the
mock provider over real HTTP: the same answers and the same broker errors for each."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from aibroker.devstack.embedded import free_port
from aibroker.errors import ProviderRateLimited, ProviderRejected, ProviderUnavailable
from aibroker.routes import ProviderConfig
from consumers.pool.engine import ByProvider, Engine
from consumers.pool.main import external_engine
from consumers.providers.openai.lean import OpenAIHttpEngine
from consumers.providers.openai.sdk import OpenAICompatibleEngine
from schemas.chunks import assemble
from schemas.envelopes import Kind, Request, Target

CLIENTS: dict[str, Callable[[dict[str, ProviderConfig]], Engine]] = {
    "http": OpenAIHttpEngine,
    "sdk": OpenAICompatibleEngine,
}


@pytest.fixture(params=sorted(CLIENTS))
async def engine(request: pytest.FixtureRequest, mock_url: str) -> AsyncIterator[Engine]:
    providers = {
        "mock": ProviderConfig(name="mock", base_url=f"{mock_url}/v1", api_key="k", timeout_s=1),
        "nowhere": ProviderConfig(
            name="nowhere", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="k"
        ),
    }
    built: Engine = CLIENTS[request.param](providers)
    yield built
    await built.aclose()


def _request(body: dict[str, Any], kind: Kind = Kind.CHAT) -> Request:
    return Request(
        id="req_1", tenant="t", kind=kind, model="alias", body=body, created_at=time.time()
    )


def _chat(text: str, **extra: Any) -> Request:
    return _request({"model": "alias", "messages": [{"role": "user", "content": text}], **extra})


async def test_an_answer_and_its_usage(engine: Engine) -> None:
    done = await engine.generate(_chat("hello there"), Target(provider="mock", model="echo"))
    assert done.response["choices"][0]["message"]["content"] == "echo: hello there"
    assert done.response["model"] == "echo"
    assert done.usage is not None
    assert done.usage.total_tokens == 5


async def test_embeddings_go_to_their_path_for_the_target_model(engine: Engine) -> None:
    body = {"model": "alias", "input": ["a", "b"], "store": True}
    target = Target(provider="mock", model="e")
    done = await engine.generate(_request(body, Kind.EMBEDDINGS), target)
    assert [d["index"] for d in done.response["data"]] == [0, 1]
    assert done.response["model"] == "e"


@pytest.mark.parametrize(
    ("model", "error", "retry_after"),
    [
        ("fail-429", ProviderRateLimited, 1.0),
        ("fail-503", ProviderUnavailable, 1.0),
        ("fail-500", ProviderUnavailable, 1.0),
        ("fail-400", ProviderRejected, None),
        ("hang", ProviderUnavailable, None),
    ],
)
async def test_failures_are_classified_alike(
    engine: Engine, model: str, error: type[Exception], retry_after: float | None
) -> None:
    with pytest.raises(error) as failed:
        await engine.generate(_chat("x"), Target(provider="mock", model=model))
    assert getattr(failed.value, "retry_after", None) == retry_after
    if model == "fail-400":
        assert str(failed.value) == "Invalid request (mock fault)"  # the provider's message


async def test_an_unreachable_provider_is_unavailable(engine: Engine) -> None:
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        await engine.generate(_chat("x"), Target(provider="nowhere", model="echo"))


async def test_a_stream_is_relayed_chunk_by_chunk(engine: Engine) -> None:
    request = _chat("one two three", stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in engine.stream(request, Target(provider="mock", model="echo"))]
    assert len(chunks) > 4
    answer = assemble(chunks)
    assert answer["choices"][0]["message"]["content"] == "echo: one two three"
    assert answer["usage"]["completion_tokens"] == 4


async def test_an_error_event_fails_the_stream_after_what_came(engine: Engine) -> None:
    got: list[dict[str, Any]] = []

    async def read() -> None:
        request = _chat("a b c d e f", stream=True)
        async for chunk in engine.stream(request, Target(provider="mock", model="breaks-2")):
            got.append(chunk)

    with pytest.raises(ProviderUnavailable, match="mid-stream"):
        await read()
    assert len(got) == 3


async def test_each_provider_gets_the_client_it_names() -> None:
    def config(name: str, **client: Any) -> ProviderConfig:
        return ProviderConfig(name=name, base_url="http://127.0.0.1:1/v1", api_key="k", **client)

    providers = {"lean": config("lean"), "sdk": config("sdk", client="sdk")}
    engine = external_engine(providers, drop_unsupported=False)
    assert isinstance(engine, ByProvider)
    assert isinstance(engine._for(Target(provider="lean", model="m")), OpenAIHttpEngine)
    assert isinstance(engine._for(Target(provider="sdk", model="m")), OpenAICompatibleEngine)
    await engine.aclose()
