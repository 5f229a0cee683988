"""The Responses API in a pool, once for every engine: a `/v1/responses` request goes as it came
to a provider that serves that endpoint itself (`responses_api`), and to every other target as
the chat request it translates to, its answer translated back to a Response object. Usage is
chat's either way, so it is billed as chat is. Streamed, a provider's own typed events are
relayed (ingress numbers them in its stream), chat chunks are (ingress makes the events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aibroker import responses_wire as wire
from aibroker.errors import ProviderUnavailable
from aibroker.responses_stream import OPENING, TERMINAL
from consumers.pool.engine import Completion, Engine
from schemas.chunks import assemble
from schemas.envelopes import Kind, Request, Target
from schemas.openai import Usage


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
            return _passed(done.response, request)
        chat = request.model_copy(update={"kind": Kind.CHAT, "body": wire.to_chat(request.body)})
        done = await self._inner.generate(chat, target)
        answer = wire.from_chat(done.response, request.body, request.id, request.created_at)
        return Completion(answer, done.usage)

    def stream(self, request: Request, target: Target) -> AsyncIterator[dict[str, Any]]:
        """A response streamed: the provider's own events (`relayed`), or the chat chunks
        as they come (ingress makes the Responses events of them); the pool joins them and
        `streamed` makes the result."""
        if request.kind is not Kind.RESPONSES:
            return self._inner.stream(request, target)
        if target.provider in self._passthrough:
            return relayed(self._inner.stream(request, target), target)
        body = wire.to_chat(request.body) | {"stream_options": {"include_usage": True}}
        chat = request.model_copy(update={"kind": Kind.CHAT, "body": body})
        return self._inner.stream(chat, target)

    async def check_health(self) -> bool:
        return await self._inner.check_health()

    async def aclose(self) -> None:
        await self._inner.aclose()


async def relayed(
    events: AsyncIterator[dict[str, Any]], target: Target
) -> AsyncIterator[dict[str, Any]]:
    """A provider's Responses events without its opening ones (the broker opens the stream
    itself; a failure before any other event is then retried or fallen back as usual). An
    `error` event, a `response.failed` or a stream without its end fails the call."""
    ended = False
    async for event in events:
        kind = event.get("type")
        if kind == "error" or kind == "response.failed":
            raise ProviderUnavailable(
                f"provider '{target.provider}' failed mid-stream: {_message_of(event)}"
            )
        if kind in OPENING:
            continue
        ended = ended or kind in TERMINAL
        yield event
    if not ended:
        raise ProviderUnavailable(f"provider '{target.provider}' ended its stream early")


def _message_of(event: dict[str, Any]) -> str:
    error = event.get("error") or (event.get("response") or {}).get("error") or event
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else "an error event"


def streamed(request: Request, chunks: list[dict[str, Any]]) -> Completion:
    """The result of a streamed response: the provider's final Response (its end event's),
    under the broker's id, or the chat chunks joined and translated."""
    ends = [c["response"] for c in chunks if c.get("type") in TERMINAL and c.get("response")]
    if ends:
        return _passed(ends[-1], request)
    joined = assemble(chunks)
    usage = joined.get("usage")
    answer = wire.from_chat(joined, request.body, request.id, request.created_at)
    return Completion(answer, Usage.model_validate(usage) if isinstance(usage, dict) else None)


def _passed(answer: dict[str, Any], request: Request) -> Completion:
    renamed = wire.from_passthrough(answer, request.body, request.id)
    usage = renamed.get("usage")
    return Completion(renamed, wire.chat_usage(usage) if isinstance(usage, dict) else None)
