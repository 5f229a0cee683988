"""The mock's OpenAI moderations (`POST /v1/moderations`): each input scored by words, so a test
can make a text flagged at will. A text holding a word of `FLAGGED_WORDS` is flagged in that
word's categories (score 0.98 there, 0.01 elsewhere); anything else is not flagged."""

from __future__ import annotations

import re
import uuid
from typing import Any

CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
FLAGGED_WORDS = {
    "kill": ("violence", "harassment/threatening"),
    "hate": ("hate", "harassment"),
    "bomb": ("illicit", "illicit/violent", "violence"),
}


def texts_of(body: dict[str, Any]) -> list[str] | None:
    """The input's texts: a string, a list of strings, or OpenAI's typed parts (text ones)."""
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        texts = []
        for item in value:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, dict) and item.get("type") == "text":
                texts.append(str(item.get("text", "")))
            elif isinstance(item, dict) and item.get("type") == "image_url":
                texts.append("")
            else:
                return None
        return texts
    return None


def result(text: str) -> dict[str, Any]:
    hit = {
        c
        for word, cats in FLAGGED_WORDS.items()
        if re.search(rf"\b{word}", text, re.I)
        for c in cats
    }
    return {
        "flagged": bool(hit),
        "categories": {c: c in hit for c in CATEGORIES},
        "category_scores": {c: 0.98 if c in hit else 0.01 for c in CATEGORIES},
        "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
    }


def answer(body: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    return {
        "id": f"modr-{uuid.uuid4().hex[:12]}",
        "model": str(body.get("model", "")),
        "results": [result(t) for t in texts],
    }
