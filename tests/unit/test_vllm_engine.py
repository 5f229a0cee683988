"""The vLLM engine's streaming and failure handling, against a scripted EngineClient that
reports outputs the way vLLM does (cumulative text per choice, one RequestOutput per step).
The real engine runs in the `gpu` tests; this checks the broker's side of the contract."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from aibroker.errors import InvalidRequest, ProviderUnavailable
from aibroker.routes import LocalModel
from consumers.local.vllm.engine import VllmEngine
from schemas.chunks import assemble
from schemas.envelopes import Kind, Request, Target

pytestmark = pytest.mark.unit
TARGET = Target(provider="vllm", model="tiny")


@dataclass
class Out:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None = None


@dataclass
class Step:
    outputs: list[Out]
    prompt_token_ids: list[int] = field(default_factory=lambda: [1, 2, 3])
    finished: bool = False


class ScriptedEngine:
    def __init__(self, steps: list[Step], fail_after: int | None = None) -> None:
        self.steps = steps
        self.fail_after = fail_after
        self.errored = False
        self.calls: list[tuple[str, Any, str]] = []

    async def generate(self, prompt: str, params: Any, request_id: str) -> AsyncIterator[Step]:
        self.calls.append((prompt, params, request_id))
        for i, step in enumerate(self.steps):
            if self.fail_after is not None and i == self.fail_after:
                self.errored = True
                raise RuntimeError("engine core died")
            yield step

    async def check_health(self) -> None:
        if self.errored:
            raise RuntimeError("dead")


class Template:
    def apply_chat_template(self, messages: list[dict[str, str]], **_: Any) -> str:
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"


def request(**body: Any) -> Request:
    return Request(
        id="req_1",
        tenant="t",
        kind=Kind.CHAT,
        model="tiny",
        body={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], **body},
        created_at=time.time(),
    )


def engine(scripted: ScriptedEngine) -> VllmEngine:
    return VllmEngine(LocalModel("tiny", "vllm", "org/tiny"), scripted, Template(), dict)


TWO_CHOICES = [
    Step([Out(0, "He", [1]), Out(1, "Yo", [1])]),
    Step([Out(0, "Hello", [1, 2], "stop"), Out(1, "Yo!", [1, 2])]),
    Step([Out(0, "Hello", [1, 2], "stop"), Out(1, "Yo! ok", [1, 2, 3], "length")], finished=True),
]


async def test_generate_maps_the_final_output_and_usage() -> None:
    scripted = ScriptedEngine(TWO_CHOICES)
    done = await engine(scripted).generate(request(n=2, temperature=0.5), TARGET)
    texts = [c["message"]["content"] for c in done.response["choices"]]
    assert texts == ["Hello", "Yo! ok"]
    assert [c["finish_reason"] for c in done.response["choices"]] == ["stop", "length"]
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (3, 5)
    prompt, params, engine_id = scripted.calls[0]
    assert prompt == "<user>hi<assistant>"
    assert params == {"n": 2, "temperature": 0.5}
    assert engine_id == "req_1:1"


async def test_stream_sends_each_delta_once_and_joins_to_the_answer() -> None:
    chunks = [
        c
        async for c in engine(ScriptedEngine(TWO_CHOICES)).stream(
            request(n=2, stream=True, stream_options={"include_usage": True}), TARGET
        )
    ]
    finishes = [
        (p["index"], p["finish_reason"]) for c in chunks for p in c["choices"] if p["finish_reason"]
    ]
    assert sorted(finishes) == [(0, "stop"), (1, "length")]  # each choice ends exactly once
    joined = assemble(chunks)
    assert [c["message"]["content"] for c in joined["choices"]] == ["Hello", "Yo! ok"]
    assert joined["usage"]["completion_tokens"] == 5  # the last chunk, as include_usage asks


async def test_a_dead_engine_is_a_retryable_failure_and_fails_health() -> None:
    scripted = ScriptedEngine(TWO_CHOICES, fail_after=1)
    pool = engine(scripted)
    with pytest.raises(ProviderUnavailable):
        await pool.generate(request(), TARGET)
    assert pool.dead
    assert not await pool.check_health()


async def test_unsupported_parameters_never_reach_the_engine() -> None:
    scripted = ScriptedEngine(TWO_CHOICES)
    with pytest.raises(InvalidRequest) as raised:
        await engine(scripted).generate(request(tools=[{"type": "function"}]), TARGET)
    assert raised.value.param == "tools"
    assert scripted.calls == []
