"""The output guard on a stream: each choice's text held back by a sliding window of
`window` characters, so a value split across chunks (`4111 1111` then `1111 1111`) is seen
whole before any of it is released. What leaves the window has been scanned with at least
`window` characters after it: redacted (or the stream stopped, on `block`), and the input's
placeholders restored, exactly as `output.guard_output` does for a whole answer.

The window never cuts inside a run of non-space characters (a token that may still grow into
an e-mail, a key, or a placeholder), nor inside a value found; a single token longer than
`LONG_TOKEN` windows is cut anyway, so a stream without spaces still moves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aibroker.guards.output import OutputScan, restored
from aibroker.guards.pii import Finding, find
from aibroker.guards.policy import GuardAction, Verdict
from aibroker.guards.scan import replaced

TEXT_DELTAS = ("content", "refusal")
"""The delta fields of a `chat.completion.chunk` that carry text a model wrote."""

LONG_TOKEN = 4
"""A token longer than this many windows is cut at the window (see the module docstring)."""


def safe_cut(pending: str, window: int, findings: list[Finding]) -> int:
    """How much of `pending` may be released: all but the last `window` characters, moved back
    to the start of the token the cut falls in and of any value found across it."""
    cut = len(pending) - window
    if cut <= 0:
        return 0
    if not (pending[cut - 1].isspace() or pending[cut].isspace()):
        start = cut
        while start > 0 and not pending[start - 1].isspace():
            start -= 1
        if start > 0 or len(pending) < LONG_TOKEN * window:
            cut = start
    for f in findings:  # sorted and apart: moving to one start leaves the cut clear of the rest
        if f.start < cut < f.end:
            cut = f.start
    return cut


class StreamWindow:
    """One choice's text field (`content` of choice 0) as it streams."""

    def __init__(self, scan: OutputScan, window: int) -> None:
        self._scan = scan
        self._window = window
        self.pending = ""

    def feed(self, delta: str) -> str:
        """Take the next piece; return what may be released now (maybe nothing)."""
        self.pending += delta
        findings = find(self.pending) if self._scan.action is not GuardAction.OFF else []
        return self._release(safe_cut(self.pending, self._window, findings), findings)

    def close(self) -> str:
        """The stream ended: everything held, scanned without anything after it."""
        findings = find(self.pending) if self._scan.action is not GuardAction.OFF else []
        return self._release(len(self.pending), findings)

    def _release(self, cut: int, findings: list[Finding]) -> str:
        if cut == 0:
            return ""
        part, self.pending = self.pending[:cut], self.pending[cut:]
        inside = [f for f in findings if f.end <= cut]
        scan = self._scan
        scan.redactor.found.update(f.entity for f in inside)
        if scan.action is GuardAction.BLOCK and inside:
            return ""
        if scan.action is GuardAction.REDACT and inside:
            return replaced(part, inside, scan.redactor, lambda gap: restored(gap, scan.values))
        return restored(part, scan.values)


class ChunkGuard:
    """A stream's chunks in, the chunks to release out: text deltas through each choice's
    window, everything else (roles, tool calls, finish reasons, usage) as it came, a chunk
    whose text is all held back not sent at all."""

    def __init__(self, action: GuardAction, values: Mapping[str, str], window: int) -> None:
        self._scan = OutputScan(action, values)
        self._window = window
        self._windows: dict[tuple[int, str], StreamWindow] = {}
        self._last: dict[str, Any] = {}

    @property
    def blocked(self) -> bool:
        """A `block` policy found something: stop the stream, release nothing more."""
        return self._scan.action is GuardAction.BLOCK and bool(self._scan.redactor.found)

    def verdict(self) -> Verdict | None:
        return self._scan.verdict()

    def take(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        """The chunk to release now, or None (nothing of it may go yet, or `blocked`)."""
        choices = chunk.get("choices")
        if not choices:
            return chunk  # the usage chunk, or an empty keep-alive
        self._last = chunk
        released: list[dict[str, Any]] = []
        carries = False
        for part in choices:
            index = part.get("index", 0)
            delta = dict(part.get("delta") or {})
            for key in TEXT_DELTAS:
                window = self._windows.setdefault(
                    (index, key), StreamWindow(self._scan, self._window)
                )
                text = window.feed(delta[key]) if isinstance(delta.get(key), str) else ""
                if part.get("finish_reason"):
                    text += window.close()
                if text or key in delta:
                    delta[key] = text
            released.append({**part, "delta": delta})
            carries = carries or part.get("finish_reason") is not None
            carries = carries or any(v for k, v in delta.items() if k in TEXT_DELTAS)
            carries = carries or any(k not in TEXT_DELTAS for k in delta)
        if self.blocked or not carries:
            return None
        return {**chunk, "choices": released}

    def finish(self) -> list[dict[str, Any]]:
        """The chunks that release what is still held when the provider's stream ends
        without a finish reason for it (or None-like empty list)."""
        out: list[dict[str, Any]] = []
        for (index, key), window in self._windows.items():
            text = window.close() if window.pending else ""
            if text and not self.blocked:
                part = {"index": index, "delta": {key: text}, "finish_reason": None}
                out.append({**self._last, "choices": [part]})
        return [] if self.blocked else out
