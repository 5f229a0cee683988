"""Running the input guard over a request body: which strings of a body are text a person
wrote (chat `content`, a content part's `text`, embeddings and Responses `input`,
`instructions`), and the redaction of their findings with placeholders that are consistent
within the request (the same value: the same `<EMAIL_1>`, in every message)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from aibroker.guards.pii import Entity, Finding, find
from aibroker.guards.policy import GuardAction, GuardPolicy, Verdict

TEXT_KEYS = frozenset({"content", "text", "input", "instructions", "prompt"})
"""The keys whose string values are text; everything else (roles, model names, image URLs and
base64, tool schemas) is left alone: a base64 image would read as a secret."""


class Redactor:
    """Placeholders for one request: a value seen again gets the placeholder it got first.
    The mapping lives only as long as the request is being guarded, in memory."""

    def __init__(self) -> None:
        self._placeholders: dict[str, str] = {}
        self._counts: Counter[Entity] = Counter()
        self.found: Counter[Entity] = Counter()

    def placeholder(self, value: str, entity: Entity) -> str:
        known = self._placeholders.get(value)
        if known is None:
            self._counts[entity] += 1
            known = self._placeholders[value] = f"<{entity.value}_{self._counts[entity]}>"
        return known

    def scan(self, text: str, *, rewrite: bool) -> str:
        """Count the text's findings; with `rewrite`, return it with each replaced."""
        findings = find(text)
        self.found.update(f.entity for f in findings)
        return replaced(text, findings, self) if rewrite and findings else text

    @property
    def values(self) -> dict[str, str]:
        """Placeholder → value: what reversible redaction restores in the answer. It is the
        caller's data: kept out of the envelope, the logs and the traces (see `restore`)."""
        return {placeholder: value for value, placeholder in self._placeholders.items()}


def _same(text: str) -> str:
    return text


def replaced(
    text: str, findings: list[Finding], redactor: Redactor, between: Callable[[str], str] = _same
) -> str:
    """The text with each finding replaced by its placeholder, and `between` applied to the
    text around them (the output guard restores the input's placeholders there)."""
    parts: list[str] = []
    at = 0
    for f in findings:  # sorted, not overlapping
        parts.append(between(text[at : f.start]))
        parts.append(redactor.placeholder(text[f.start : f.end], f.entity))
        at = f.end
    parts.append(between(text[at:]))
    return "".join(parts)


def _walk(value: Any, key: str | None, redactor: Redactor, rewrite: bool) -> Any:
    if isinstance(value, str):
        return redactor.scan(value, rewrite=rewrite) if key in TEXT_KEYS else value
    if isinstance(value, list):
        return [_walk(item, key, redactor, rewrite) for item in value]
    if isinstance(value, dict):
        return {k: _walk(v, k, redactor, rewrite) for k, v in value.items()}
    return value


def scan_texts(body: dict[str, Any], *, rewrite: bool) -> tuple[dict[str, Any], Redactor]:
    """The body (rewritten when asked) and the redactor that saw it (its `found` counts)."""
    redactor = Redactor()
    scanned: dict[str, Any] = _walk(body, None, redactor, rewrite)
    return scanned, redactor


def guard_input(policy: GuardPolicy, body: dict[str, Any]) -> tuple[dict[str, Any], Verdict | None]:
    """The body to send on (redacted when the policy says so) and the PII guard's verdict;
    None when the guard is off. A `block` verdict with findings means: do not send it."""
    scanned, verdict, _ = guard_input_restorable(policy, body)
    return scanned, verdict


def guard_input_restorable(
    policy: GuardPolicy, body: dict[str, Any]
) -> tuple[dict[str, Any], Verdict | None, dict[str, str]]:
    """`guard_input`, and the placeholders to restore in the answer (placeholder → value):
    empty unless the policy redacts and asks for `restore`, and something was redacted."""
    action = policy.input.pii
    if action is GuardAction.OFF:
        return body, None, {}
    scanned, redactor = scan_texts(body, rewrite=action is GuardAction.REDACT)
    restorable = action is GuardAction.REDACT and policy.restore
    return scanned, Verdict("pii", action, redactor.found), redactor.values if restorable else {}
