"""The Responses API in a pool, once for every engine: a `/v1/responses` request goes as it came
to a provider that serves that endpoint itself (`responses_api`), and to every other target as
the chat request it translates to, its answer translated back to a Response object. Usage is
chat's either way, so it is billed as chat is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aibroker import responses_wire as wire
from aibroker.errors import InvalidRequest
from consumers.pool.engine import Completion, Engine
from schemas.envelopes import Kind, Request, Target


class ResponsesOverChat:
    """An engine that serves `Kind.RESPONSES` on top of `inner`, which serves chat (and, for
    the providers in `passthrough`, `/v1/responses` itself)."""

    def __init__(self, inner: Engine, passthrough: frozenset[str] = frozenset()) -> None:
        self._inner = inner
        self._passthrough = passthrough

    async def generate(self, request: Request, target: Target) -> Completion:
        if request.kind is not Kind.RESPONSES:
            return await self._inner.generate(request, target)
        if target.provider in self._passthrough:
            done = await self._inner.generate(request, target)
            answer = wire.from_passthrough(done.response, request.body, request.id)
            usage = answer.get("usage")
            return Completion(answer, wire.chat_usage(usage) if isinstance(usage, dict) else None)
        chat = request.model_copy(update={"kind": Kind.CHAT, "body": wire.to_chat(request.body)})
        done = await self._inner.generate(chat, target)
        answer = wire.from_chat(done.response, request.body, request.id, request.created_at)
        return Completion(answer, done.usage)

    def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        """A response streamed over chat: the chat chunks as they come (ingress makes the
        Responses events of them; the pool joins them and `finished` makes the result)."""
        if request.kind is not Kind.RESPONSES:
            return self._inner.stream(request, target)
        if target.provider in self._passthrough:
            raise InvalidRequest(
                f"Streamed responses are not served by provider '{target.provider}' yet.",
                param="stream",
            )
        body = wire.to_chat(request.body) | {"stream_options": {"include_usage": True}}
        chat = request.model_copy(update={"kind": Kind.CHAT, "body": body})
        return self._inner.stream(chat, target)

    async def check_health(self) -> bool:
        return await self._inner.check_health()

    async def aclose(self) -> None:
        await self._inner.aclose()
