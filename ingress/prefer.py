"""The `Prefer` header (RFC 7240): `respond-async` and `wait=N`, and the wait they ask for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preferences:
    respond_async: bool = False
    wait_s: float | None = None


def parse_prefer(values: list[str]) -> Preferences:
    respond_async = False
    wait: float | None = None
    for value in values:
        for token in value.split(","):
            name, _, arg = token.strip().partition("=")
            name = name.strip().lower()
            if name == "respond-async":
                respond_async = True
            elif name == "wait":
                try:
                    wait = max(0.0, float(arg.strip().strip('"')))
                except ValueError:
                    continue
    return Preferences(respond_async, wait)


def sync_wait_s(prefer: Preferences, limit_s: float) -> float | None:
    """How long a sync caller waits for its answer: `wait=N` (0 or none: `limit_s`) bounded by
    `limit_s`; None for `respond-async` (202 at once)."""
    return None if prefer.respond_async else min(prefer.wait_s or limit_s, limit_s)
