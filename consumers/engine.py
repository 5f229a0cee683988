"""The port every engine implements, shaped like vLLM's EngineClient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.envelopes import Request, Target
from schemas.openai import Usage


@dataclass(frozen=True)
class Completion:
    response: dict[str, Any]
    usage: Usage | None


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
