"""The output guard on a whole answer: the PII recognizers run on the text a model wrote
(`content`, `text`, `refusal`, tool-call `arguments`) before the result is published, and the
input's placeholders restored for the caller where the policy asks for it (`restore`).

Order matters: findings are looked for in the provider's text, and only the text between them
has its placeholders restored, so a restored value (the caller's own) is never redacted or
blocked, and an output placeholder is never mistaken for an input one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aibroker.guards.pii import find
from aibroker.guards.policy import GuardAction, Verdict
from aibroker.guards.scan import Redactor, replaced

OUTPUT_GUARD = "output.pii"
"""The verdict's guard name: the metric's `guard` label and the error's `param`
(`guardrails.output.pii`)."""

OUTPUT_TEXT_KEYS = frozenset({"content", "text", "refusal", "arguments"})
"""The keys of an answer whose strings a model wrote (chat and Responses messages, OCR text,
tool-call arguments); ids, roles, model names and embeddings are left alone."""

PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*_[0-9]+>")
"""What `Redactor.placeholder` writes (`<EMAIL_1>`, `<CREDIT_CARD_2>`)."""


def restored(text: str, values: Mapping[str, str]) -> str:
    """The text with each placeholder the input guard made replaced by the caller's value
    (a placeholder it did not make, or one the model invented, stays as written)."""
    if not values or "<" not in text:
        return text
    return PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), text)


class OutputScan:
    """One answer's scan: what was found (by type) and the text as the caller gets it."""

    def __init__(self, action: GuardAction, values: Mapping[str, str]) -> None:
        self.action = action
        self.values = values
        self.redactor = Redactor()

    def text(self, text: str) -> str:
        if self.action is GuardAction.OFF:
            return restored(text, self.values)
        findings = find(text)
        self.redactor.found.update(f.entity for f in findings)
        if self.action is not GuardAction.REDACT or not findings:
            return restored(text, self.values)
        return replaced(text, findings, self.redactor, lambda gap: restored(gap, self.values))

    def verdict(self) -> Verdict | None:
        if self.action is GuardAction.OFF:
            return None
        return Verdict(OUTPUT_GUARD, self.action, self.redactor.found)


def _walk(value: Any, key: str | None, scan: OutputScan) -> Any:
    if isinstance(value, str):
        return scan.text(value) if key in OUTPUT_TEXT_KEYS else value
    if isinstance(value, list):
        return [_walk(item, key, scan) for item in value]
    if isinstance(value, dict):
        return {k: _walk(v, k, scan) for k, v in value.items()}
    return value


def guard_output(
    action: GuardAction, response: dict[str, Any], values: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], Verdict | None]:
    """The answer as the caller gets it (redacted, restored) and the output guard's verdict
    (None when it is off). A `block` verdict with findings means: publish the error instead."""
    if action is GuardAction.OFF and not values:
        return response, None
    scan = OutputScan(action, values or {})
    guarded: dict[str, Any] = _walk(response, None, scan)
    return guarded, scan.verdict()
