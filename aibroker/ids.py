"""Time-sortable identifiers: 48 bits of milliseconds then 80 random bits, Crockford base32."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    """`prefix_` + 10 chars of time + 16 of randomness; ids sort by creation time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{prefix}_{_b32(ms, 10)}{_b32(secrets.randbits(80), 16)}"


def created_at(value: str) -> float | None:
    """When an id of `new_id` was made (Unix seconds), read from its time part; None for an
    id that is not one."""
    _, sep, rest = value.partition("_")
    if not sep or len(rest) != 26 or any(c not in _ALPHABET for c in rest[:10]):
        return None
    ms = 0
    for char in rest[:10]:
        ms = ms * 32 + _ALPHABET.index(char)
    return ms / 1000
