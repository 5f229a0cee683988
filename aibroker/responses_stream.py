"""The Responses API's typed stream events, built from the chat chunks a pool relays and the
Response object that ends the request (or, from a provider with a Responses API of its own,
its typed events relayed, renumbered): `response.created`, `response.in_progress`, the output
message's `output_item.added` / `content_part.added` / `output_text.delta`... and their `done`
events, function calls whole at the end, then `response.completed` (or `.incomplete`,
`.failed`), each with its `sequence_number`. Pure: ingress feeds it and writes what it
returns."""

from __future__ import annotations

from typing import Any

from aibroker.responses_wire import message_id, shell

ENDED = {"completed": "response.completed", "incomplete": "response.incomplete"}
TERMINAL = frozenset({*ENDED.values(), "response.failed"})
"""The event types that end a stream."""
OPENING = frozenset({"response.created", "response.in_progress", "response.queued"})
"""A provider's own opening events: the broker opens every stream itself, with its own id."""


class Events:
    """One response's events, numbered from 0 in the order they are made."""

    def __init__(self, body: dict[str, Any], response_id: str, created_at: float) -> None:
        self._body = body
        self._id = response_id
        self._created_at = created_at
        self._seq = 0
        self._text: str | None = None
        """The output message's text so far; None until its first piece."""
        self._relayed = False
        """Whether the events are a provider's own (its `/v1/responses`), relayed."""

    @classmethod
    def resumed(
        cls, body: dict[str, Any], response_id: str, created_at: float, kept: list[dict[str, Any]]
    ) -> Events:
        """The events of a response that go on after those `kept` (numbered on from the last,
        the message's text so far joined from its deltas): the end of a stream whose writer
        stopped is made from its result by whoever finds it missing."""
        events = cls(body, response_id, created_at)
        if kept:
            events._seq = int(kept[-1]["sequence_number"]) + 1
        deltas = [e["delta"] for e in kept if e.get("type") == "response.output_text.delta"]
        opened = any(e.get("type") == "response.output_item.added" for e in kept)
        events._text = "".join(deltas) if opened else None
        events._relayed = _relayed_in(kept, response_id)
        return events

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        running = shell(self._body, self._id, self._created_at, "in_progress")
        return [
            self._event("response.created", response=running),
            self._event("response.in_progress", response=running),
        ]

    def chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """A chat chunk's text as `output_text.delta` (the message opened at its first);
        tool-call pieces wait for the end, where they come whole. A provider's own typed
        event (it has a `type`) is relayed as it came, numbered in this stream."""
        if "type" in chunk:
            return self._relay(chunk)
        events: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                events += self._open_message()
                self._text = (self._text or "") + piece
                events.append(self._delta(piece))
        return events

    def _relay(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """A provider's event as it came, but its opening (the broker's own is sent) and its
        end (made from the result, which carries the broker's id) left out."""
        self._relayed = True
        kind = str(event["type"])
        if kind in OPENING or kind in TERMINAL:
            return []
        fields = {k: v for k, v in event.items() if k not in ("type", "sequence_number")}
        return [self._event(kind, **fields)]

    def _open_message(self) -> list[dict[str, Any]]:
        if self._text is not None:
            return []
        self._text = ""
        item = {
            "type": "message",
            "id": message_id(self._id),
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        part = {"type": "output_text", "text": "", "annotations": []}
        return [
            self._event("response.output_item.added", output_index=0, item=item),
            self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=0,
                content_index=0,
                part=part,
            ),
        ]

    def _delta(self, piece: str) -> dict[str, Any]:
        return self._event(
            "response.output_text.delta",
            item_id=message_id(self._id),
            output_index=0,
            content_index=0,
            delta=piece,
            logprobs=[],
        )

    def finish(self, response: dict[str, Any]) -> list[dict[str, Any]]:
        """The items of the final Response closed (a text never streamed, from a request
        that ended before its stream, comes as one delta), then the response's end; after a
        provider's relayed events, which closed its items, the end alone."""
        kind = ENDED.get(str(response.get("status")), "response.completed")
        if self._relayed:
            return [self._event(kind, response=response)]
        events: list[dict[str, Any]] = []
        for index, item in enumerate(response.get("output") or []):
            if item.get("type") == "message":
                events += self._close_message(index, item)
            else:
                events += self._whole_item(index, item)
        return [*events, self._event(kind, response=response)]

    def _close_message(self, index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
        text = "".join(p.get("text") or "" for p in item.get("content") or [])
        events = self._open_message() if index == 0 else []
        if self._text == "" and text:
            events.append(self._delta(text))
        where = {"item_id": item.get("id"), "output_index": index, "content_index": 0}
        part = {"type": "output_text", "text": text, "annotations": []}
        return [
            *events,
            self._event("response.output_text.done", **where, text=text, logprobs=[]),
            self._event("response.content_part.done", **where, part=part),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _whole_item(self, index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
        added = {**item, "status": "in_progress"}
        if item.get("type") == "function_call":
            added["arguments"] = ""
        events = [self._event("response.output_item.added", output_index=index, item=added)]
        if item.get("type") == "function_call":
            where = {"item_id": item.get("id"), "output_index": index}
            arguments = item.get("arguments") or ""
            events += [
                self._event("response.function_call_arguments.delta", **where, delta=arguments),
                self._event("response.function_call_arguments.done", **where, arguments=arguments),
            ]
        return [*events, self._event("response.output_item.done", output_index=index, item=item)]

    def failed(self, error: dict[str, Any] | None, status: str = "failed") -> dict[str, Any]:
        """The end of a response that failed (or was cancelled) after its stream began."""
        response = shell(self._body, self._id, self._created_at, status)
        response["error"] = error
        return self._event("response.failed", response=response)


def _relayed_in(kept: list[dict[str, Any]], response_id: str) -> bool:
    """Whether kept events are a provider's relayed: they name items by the provider's ids
    (a stream made over chat names its message by the broker's id until its end)."""
    own = message_id(response_id)
    for event in kept:
        if event.get("type") in TERMINAL:
            continue
        named = {event.get("item_id"), (event.get("item") or {}).get("id")} - {None, own}
        if named:
            return True
    return False
