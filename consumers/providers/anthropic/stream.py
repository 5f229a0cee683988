"""Anthropic's stream events in, OpenAI `chat.completion.chunk`s out (the stream half of
`anthropic.wire`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from consumers.providers.anthropic.wire import FINISH, JSON_TOOL, usage


@dataclass
class StreamTranslator:
    """Anthropic stream events in, OpenAI `chat.completion.chunk`s out."""

    json_mode: bool
    include_usage: bool
    id: str = ""
    model: str = ""
    prompt_usage: dict[str, Any] = field(default_factory=dict)
    output_tokens: int = 0
    tool_index: dict[int, int] = field(default_factory=dict)
    """Anthropic content-block index → OpenAI tool-call index."""
    json_blocks: set[int] = field(default_factory=set)
    finished: bool = False

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.id, self.model = message.get("id", ""), message.get("model", "")
            self.prompt_usage = message.get("usage") or {}
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(int(event.get("index", 0)), event.get("content_block") or {})
        if kind == "content_block_delta":
            return self._delta(int(event.get("index", 0)), event.get("delta") or {})
        if kind == "message_delta":
            self.output_tokens = int((event.get("usage") or {}).get("output_tokens") or 0)
            stop = (event.get("delta") or {}).get("stop_reason")
            reason = FINISH.get(stop or "", "stop")
            if self.json_mode and reason == "tool_calls" and not self.tool_index:
                reason = "stop"
            self.finished = True
            return [self._chunk({}, finish_reason=reason)]
        if kind == "message_stop" and self.include_usage:
            done = usage({**self.prompt_usage, "output_tokens": self.output_tokens})
            return [{**self._head(), "choices": [], "usage": done}]
        return []  # ping, content_block_stop, message_stop without usage

    def _block_start(self, index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
        if block.get("type") != "tool_use":
            text = block.get("text") or ""
            return [self._chunk({"content": text})] if text else []
        if self.json_mode and block.get("name") == JSON_TOOL:
            self.json_blocks.add(index)
            return []
        position = self.tool_index.setdefault(index, len(self.tool_index))
        call = {
            "index": position,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _delta(self, index: int, delta: dict[str, Any]) -> list[dict[str, Any]]:
        if delta.get("type") == "text_delta":
            return [self._chunk({"content": delta.get("text", "")})]
        if delta.get("type") == "input_json_delta":
            partial = delta.get("partial_json", "")
            if index in self.json_blocks:
                return [self._chunk({"content": partial})] if partial else []
            call = {"index": self.tool_index.get(index, 0), "function": {"arguments": partial}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # thinking and signature deltas have no OpenAI counterpart

    def _head(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {**self._head(), "choices": [choice]}
