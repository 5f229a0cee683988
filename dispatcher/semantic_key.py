"""The semantic cache's decisions, pure: whether a request takes part, the text that is
embedded (its last user turn), the exact part of its key (everything else), and whether a
neighbour found by similarity may answer it.

A semantic hit may serve another prompt's answer only when nothing but the wording of the
last user turn differs: the system prompt, earlier turns, tools, `tool_choice`,
`response_format`, every other body field, the alias and the target are hashed into the
*context* (with the exact cache's canonical hashing, `rules/cache_key.py`), and a point of
another context is never looked at. Only short conversations take part (multi-turn and agent
traffic is where semantic caches answer wrongly), and only texts the embedding model reads
whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from aibroker.rules.cache_key import body_hash
from aibroker.rules.semantic import may_match
from schemas.envelopes import Kind, Target


@dataclass(frozen=True)
class SemanticPolicy:
    """The semantic cache's settings as plain values (see `CacheSettings.semantic_*`)."""

    tenants: frozenset[str] = frozenset()
    aliases: frozenset[str] = frozenset()
    threshold: float = 0.85
    max_messages: int = 2
    max_chars: int = 1000


def key_text(
    tenant: str, alias: str, kind: Kind, body: dict[str, Any], policy: SemanticPolicy
) -> str | None:
    """The text to embed, or None when the request does not take part: not opted in (its
    tenant or alias), not chat, more messages than the limit, a last message that is not the
    user's, not text alone (an image part), empty, or longer than the model reads."""
    if tenant not in policy.tenants and alias not in policy.aliases:
        return None
    messages = body.get("messages")
    if kind is not Kind.CHAT or not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if len(messages) > policy.max_messages or not isinstance(last, dict):
        return None
    if last.get("role") != "user":
        return None
    text = _text(last.get("content"))
    if text is None or not text.strip() or len(text) > policy.max_chars:
        return None
    return text.strip()


def _text(content: Any) -> str | None:
    """A message's content as one text: a string, or text parts joined (None: another part)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            return None
        texts.append(str(part.get("text", "")))
    return "\n".join(texts)


def context_hash(tenant: str, alias: str, kind: Kind, target: Target, body: dict[str, Any]) -> str:
    """A hash of everything that can change the answer but the last user turn's text: the
    body with that text removed (the turn's other fields stay), the alias and the target."""
    messages = list(body["messages"])
    last = {k: v for k, v in messages[-1].items() if k != "content"}
    rest = {**body, "messages": [*messages[:-1], last]}
    named = [tenant, alias, kind.value, target.provider, target.model, body_hash(rest)]
    return hashlib.sha256(orjson.dumps(named)).hexdigest()


def accepts(score: float, query: str, cached: str, threshold: float) -> bool:
    """Whether the cached prompt's answer may serve `query`: near enough by embedding, and
    no number, negation, unit or the like that tells them apart (`may_match`)."""
    return score >= threshold and may_match(query, cached)
