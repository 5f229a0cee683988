"""A caller's bounds on a batch job, pure: read from the batch's `metadata` (`aibroker.*` keys,
string values, so `client.batches.create(metadata={...})` of the official SDK passes them), and
the decision of when a running batch must stop.

    aibroker.max_cost_usd         stop once the lines' spend reaches this (USD, a decimal)
    aibroker.max_failed_lines     stop once more lines than this failed
    aibroker.max_failed_share     stop once the failed share of the finished lines passes
                                  this (0 to 1) ...
    aibroker.min_lines_for_share  ... counted only after this many lines finished (20)
    aibroker.defaults             a JSON object of body parameters every line gets unless it
                                  sets them ({"temperature": 0, "max_tokens": 256})

Any other `aibroker.` key is refused, so a misspelt bound never silently lets a job run
unbounded; other metadata keys are the caller's and left alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import orjson

PREFIX = "aibroker."
MAX_COST_USD = "aibroker.max_cost_usd"
MAX_FAILED_LINES = "aibroker.max_failed_lines"
MAX_FAILED_SHARE = "aibroker.max_failed_share"
MIN_LINES_FOR_SHARE = "aibroker.min_lines_for_share"
DEFAULTS = "aibroker.defaults"
KEYS = (MAX_COST_USD, MAX_FAILED_LINES, MAX_FAILED_SHARE, MIN_LINES_FOR_SHARE, DEFAULTS)

MIN_LINES_FOR_SHARE_DEFAULT = 20
"""A share over a handful of lines says little: 1 failure of the first 2 is 50 %."""
NOT_DEFAULTABLE = frozenset({"model", "messages", "input", "stream"})
"""What a line is, not how it runs: these come from each line alone."""


class BadBound(ValueError):
    """A bound the batch cannot run with; `key` names the metadata key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class StopReason(StrEnum):
    """Why a batch was stopped before every line ran (the bound it reached)."""

    MAX_COST_USD = "max_cost_usd"
    """Its lines' spend reached `aibroker.max_cost_usd`."""
    MAX_FAILED_LINES = "max_failed_lines"
    """More lines failed than `aibroker.max_failed_lines`."""
    MAX_FAILED_SHARE = "max_failed_share"
    """The failed share passed `aibroker.max_failed_share` (past the minimum count)."""


@dataclass(frozen=True)
class Bounds:
    max_cost_usd: Decimal | None = None
    max_failed_lines: int | None = None
    max_failed_share: float | None = None
    min_lines_for_share: int = MIN_LINES_FOR_SHARE_DEFAULT
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def stops(self) -> bool:
        """Whether any ceiling is set (else the runner never needs to look)."""
        return (
            self.max_cost_usd is not None
            or self.max_failed_lines is not None
            or self.max_failed_share is not None
        )


NONE = Bounds()


@dataclass(frozen=True)
class Tally:
    """A running batch's line counts and what its recorded lines cost."""

    completed: int
    failed: int
    total: int
    spent_usd: Decimal = Decimal(0)

    @property
    def finished(self) -> int:
        return self.completed + self.failed


def parse_bounds(metadata: Mapping[str, str] | None) -> Bounds:
    """The bounds a batch's metadata sets; BadBound naming the first key that is wrong."""
    if not metadata:
        return NONE
    for key in metadata:
        if key.startswith(PREFIX) and key not in KEYS:
            raise BadBound(key, f"Unknown batch bound '{key}'; known: {', '.join(KEYS)}.")
    share = _number(metadata, MAX_FAILED_SHARE)
    if share is not None and not 0 <= share < 1:
        raise BadBound(MAX_FAILED_SHARE, f"{MAX_FAILED_SHARE} must be at least 0, below 1.")
    minimum = _count(metadata, MIN_LINES_FOR_SHARE, least=1)
    return Bounds(
        max_cost_usd=_usd(metadata),
        max_failed_lines=_count(metadata, MAX_FAILED_LINES, least=0),
        max_failed_share=share,
        min_lines_for_share=MIN_LINES_FOR_SHARE_DEFAULT if minimum is None else minimum,
        defaults=_defaults(metadata),
    )


def _usd(metadata: Mapping[str, str]) -> Decimal | None:
    raw = metadata.get(MAX_COST_USD)
    if raw is None:
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0:
        raise BadBound(MAX_COST_USD, f"{MAX_COST_USD} must be a positive decimal, like '2.50'.")
    return value


def _count(metadata: Mapping[str, str], key: str, *, least: int) -> int | None:
    raw = metadata.get(key)
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = least - 1
    if value < least:
        raise BadBound(key, f"{key} must be a whole number of at least {least}.")
    return value


def _number(metadata: Mapping[str, str], key: str) -> float | None:
    raw = metadata.get(key)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise BadBound(key, f"{key} must be a number.")
    return value


def _defaults(metadata: Mapping[str, str]) -> dict[str, Any]:
    raw = metadata.get(DEFAULTS)
    if raw is None:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise BadBound(DEFAULTS, f"{DEFAULTS} must be a JSON object of body parameters.")
    fixed = sorted(NOT_DEFAULTABLE & value.keys())
    if fixed:
        raise BadBound(DEFAULTS, f"{DEFAULTS} cannot set {', '.join(fixed)}: each line does.")
    return value


def with_defaults(body: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A line's body with the batch's defaults under it: what the line sets wins."""
    return {**defaults, **body}


def stop_reason(bounds: Bounds, tally: Tally) -> StopReason | None:
    """Whether a running batch must stop now, and why; None to let it run. Spend first (it is
    money), then failures: more than `max_failed_lines`, or a failed share over
    `max_failed_share` once `min_lines_for_share` lines have finished."""
    if bounds.max_cost_usd is not None and tally.spent_usd >= bounds.max_cost_usd:
        return StopReason.MAX_COST_USD
    if bounds.max_failed_lines is not None and tally.failed > bounds.max_failed_lines:
        return StopReason.MAX_FAILED_LINES
    share = bounds.max_failed_share
    if (
        share is not None
        and tally.finished >= bounds.min_lines_for_share
        and tally.failed > share * tally.finished
    ):
        return StopReason.MAX_FAILED_SHARE
    return None


def stopped_error(reason: StopReason, bounds: Bounds, tally: Tally) -> dict[str, Any]:
    """The entry of the batch's `errors` (OpenAI's shape) that says why it stopped."""
    if reason is StopReason.MAX_COST_USD:
        ceiling = format(bounds.max_cost_usd or 0, "f")
        said = f"its lines cost {tally.spent_usd:f} USD, reaching {MAX_COST_USD} = {ceiling}"
    elif reason is StopReason.MAX_FAILED_LINES:
        said = f"{tally.failed} lines failed, more than {MAX_FAILED_LINES} = "
        said += str(bounds.max_failed_lines)
    else:
        said = f"{tally.failed} of {tally.finished} finished lines failed, more than "
        said += f"{MAX_FAILED_SHARE} = {bounds.max_failed_share}"
    return {
        "code": f"{reason.value}_reached",
        "message": f"The batch was stopped: {said}. Its unfinished lines were cancelled.",
        "line": None,
        "param": f"metadata.{PREFIX}{reason.value}",
    }
