"""The port every engine implements, shaped like vLLM's EngineClient."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from aibroker.errors import InvalidRequest
from consumers.pool.batcher import MicroBatcher
from schemas.envelopes import Request, Target
from schemas.openai import Usage


@dataclass(frozen=True)
class Completion:
    response: dict[str, Any]
    usage: Usage | None


def call_timeout(provider_s: float, deadline: float | None, *, now: float | None = None) -> float:
    """The provider's timeout, cut short by the request's deadline (at least 1 s)."""
    if deadline is None:
        return provider_s
    left = deadline - (time.time() if now is None else now)
    return max(1.0, min(provider_s, left))


def tier_timeout(timeout_s: float, flex_timeout_s: float, body: Mapping[str, Any]) -> float:
    """A call asking for OpenAI's flex tier waits `flex_timeout_s` (flex is served from spare
    capacity, slower); any other call `timeout_s`."""
    return flex_timeout_s if body.get("service_tier") == "flex" else timeout_s


class Engine(Protocol):
    async def generate(self, request: Request, target: Target) -> Completion:
        """Run one request; raise a BrokerError subclass on failure."""
        ...

    def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        """Run one request, yielding OpenAI `chat.completion.chunk`s as they come (engines
        without streaming raise InvalidRequest naming `stream`)."""
        ...

    async def check_health(self) -> bool: ...

    async def aclose(self) -> None: ...


class ByProvider:
    """Several engines behind one: each target goes to the engine of its provider (the
    external pool serves OpenAI-compatible and Anthropic deployments side by side)."""

    def __init__(self, engines: dict[str, Engine]) -> None:
        self._engines = engines

    def _for(self, target: Target) -> Engine:
        engine = self._engines.get(target.provider)
        if engine is None:
            raise InvalidRequest(f"provider '{target.provider}' is not served by this pool")
        return engine

    async def generate(self, request: Request, target: Target) -> Completion:
        return await self._for(target).generate(request, target)

    def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        return self._for(target).stream(request, target)

    async def check_health(self) -> bool:
        return all([await e.check_health() for e in self._unique()])

    async def aclose(self) -> None:
        for engine in self._unique():
            await engine.aclose()

    def _unique(self) -> list[Engine]:
        return list({id(e): e for e in self._engines.values()}.values())


M = TypeVar("M", bound=BaseModel)


class BatchedEngine:
    """What the local engines behind a micro-batcher share: the request body read with its
    schema, no streaming, and the batcher and model thread closed together."""

    what: ClassVar[str]
    """What the engine serves, for messages: `embeddings`, `OCR`."""
    _batcher: MicroBatcher[Any, Any]
    _thread: Executor

    def _parse(self, schema: type[M], body: dict[str, Any]) -> M:
        try:
            return schema.model_validate(body)
        except ValidationError as exc:
            raise InvalidRequest(f"invalid {self.what} request: {exc.errors()[0]['msg']}") from exc

    async def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        raise InvalidRequest(f"{self.what} cannot be streamed", param="stream")
        yield {}  # pragma: no cover - makes this an async generator

    async def check_health(self) -> bool:
        return True

    async def aclose(self) -> None:
        await self._batcher.aclose()
        self._thread.shutdown(wait=True)
