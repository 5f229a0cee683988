"""The two Anthropic clients, the lean aiohttp path and the official SDK, against the mock
provider's Messages API over real HTTP: the same answers and the same broker errors for each."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aibroker.devstack.embedded import free_port
from aibroker.errors import (
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from aibroker.routes import ProviderConfig
from consumers.pool.engine import ByProvider, Engine
from consumers.pool.main import external_engine
from consumers.providers.anthropic.lean import AnthropicHttpEngine
from consumers.providers.anthropic.sdk import AnthropicEngine
from schemas.chunks import assemble
from schemas.envelopes import Kind, Request, Target

CLIENTS: dict[str, type[AnthropicHttpEngine] | type[AnthropicEngine]] = {
    "http": AnthropicHttpEngine,
    "sdk": AnthropicEngine,
}
MOCK = Target(provider="claude", model="echo")


@pytest.fixture(params=sorted(CLIENTS))
async def engine(request: pytest.FixtureRequest, mock_url: str) -> AsyncIterator[Engine]:
    def config(name: str, url: str) -> ProviderConfig:
        return ProviderConfig(name=name, base_url=url, api_key="k", timeout_s=1, kind="anthropic")

    providers = {
        "claude": config("claude", mock_url),
        "nowhere": config("nowhere", f"http://127.0.0.1:{free_port()}"),
    }
    built: Engine = CLIENTS[request.param](providers, drop_unsupported=False)
    yield built
    await built.aclose()


def _chat(text: str, **extra: Any) -> Request:
    body = {"model": "alias", "messages": [{"role": "user", "content": text}], **extra}
    return Request(
        id="req_1", tenant="t", kind=Kind.CHAT, model="alias", body=body, created_at=time.time()
    )


async def test_an_answer_in_openai_shape_with_its_usage(engine: Engine) -> None:
    done = await engine.generate(_chat("hello there", max_tokens=50), MOCK)
    choice = done.response["choices"][0]
    assert choice["message"]["content"] == "echo: hello there"
    assert choice["finish_reason"] == "stop"
    assert done.usage is not None
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens


async def test_json_mode_answers_with_the_json(engine: Engine) -> None:
    request = _chat("{}", response_format={"type": "json_object"})
    done = await engine.generate(request, MOCK)
    assert done.response["choices"][0]["message"]["content"] is not None


@pytest.mark.parametrize(
    ("model", "error", "retry_after"),
    [
        ("fail-429", ProviderRateLimited, 1.0),
        ("fail-529", ProviderUnavailable, 1.0),
        ("fail-500", ProviderUnavailable, None),
        ("fail-400", ProviderRejected, None),
        ("hang", ProviderUnavailable, None),
    ],
)
async def test_failures_are_classified_alike(
    engine: Engine, model: str, error: type[Exception], retry_after: float | None
) -> None:
    with pytest.raises(error) as failed:
        await engine.generate(_chat("x"), Target(provider="claude", model=model))
    assert getattr(failed.value, "retry_after", None) == retry_after


async def test_an_unreachable_provider_is_unavailable(engine: Engine) -> None:
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        await engine.generate(_chat("x"), Target(provider="nowhere", model="echo"))


async def test_a_stream_is_translated_chunk_by_chunk(engine: Engine) -> None:
    request = _chat("one two three", stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in engine.stream(request, MOCK)]
    assert len(chunks) > 4
    answer = assemble(chunks)
    assert answer["choices"][0]["message"]["content"] == "echo: one two three"
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["completion_tokens"] > 0


async def test_an_error_event_fails_the_stream_by_its_type(engine: Engine) -> None:
    got: list[dict[str, Any]] = []

    async def read() -> None:
        request = _chat("a b c d e f", stream=True)
        async for chunk in engine.stream(request, Target(provider="claude", model="breaks-2")):
            got.append(chunk)

    with pytest.raises(ProviderUnavailable, match="Overloaded"):
        await read()
    assert len(got) == 3  # the role, then two words


async def test_each_anthropic_provider_gets_the_client_it_names() -> None:
    def config(name: str, **client: Any) -> ProviderConfig:
        url = "http://127.0.0.1:1"
        return ProviderConfig(name=name, base_url=url, api_key="k", kind="anthropic", **client)

    providers = {"lean": config("lean"), "sdk": config("sdk", client="sdk")}
    engine = external_engine(providers, drop_unsupported=False)
    assert isinstance(engine, ByProvider)
    assert isinstance(engine._for(Target(provider="lean", model="m")), AnthropicHttpEngine)
    assert isinstance(engine._for(Target(provider="sdk", model="m")), AnthropicEngine)
    await engine.aclose()
