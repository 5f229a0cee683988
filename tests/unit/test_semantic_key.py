"""The semantic cache's decisions (`dispatcher/semantic_key.py`): which requests take part, the
text embedded, what the context hash holds (everything but the last user turn's text), when a
neighbour may answer; and the embedding read back from a pool's result."""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

import pytest

from aibroker.stores.semantic_cache import Point, collection_name
from dispatcher.semantic_key import SemanticPolicy, accepts, context_hash, key_text
from schemas.envelopes import Kind, Result, Status, Target
from schemas.vectors import vectors_of

pytestmark = pytest.mark.unit

POLICY = SemanticPolicy(tenants=frozenset({"acme"}), aliases=frozenset({"fast"}), max_chars=40)
TARGET = Target(provider="openai", model="gpt-4o-mini")
SYSTEM = {"role": "system", "content": "Be brief."}


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt", "messages": list(messages), "temperature": 0, **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


# tenant, alias, kind, body, the text embedded (None: the request does not take part)
TAKES_PART: list[tuple[str, str, Kind, dict[str, Any], str | None]] = [
    ("acme", "gpt", Kind.CHAT, chat(user(" How do I reset it? ")), "How do I reset it?"),
    ("other", "fast", Kind.CHAT, chat(user("hi there")), "hi there"),  # the alias opted in
    ("other", "gpt", Kind.CHAT, chat(user("hi there")), None),  # neither opted in
    ("acme", "gpt", Kind.CHAT, chat(SYSTEM, user("hi there")), "hi there"),
    ("acme", "gpt", Kind.CHAT, chat(SYSTEM, user("a"), user("b")), None),  # over the limit
    ("acme", "gpt", Kind.CHAT, chat(user("hi"), {"role": "assistant", "content": "x"}), None),
    ("acme", "gpt", Kind.CHAT, chat(user([{"type": "text", "text": "a"}])), "a"),
    (
        "acme",
        "gpt",
        Kind.CHAT,
        chat(user([{"type": "image_url", "image_url": {"url": "http://x/y.png"}}])),
        None,
    ),
    ("acme", "gpt", Kind.CHAT, chat(user("   ")), None),
    ("acme", "gpt", Kind.CHAT, chat(user("x" * 41)), None),  # longer than the model reads
    ("acme", "gpt", Kind.CHAT, chat(), None),
    ("acme", "emb", Kind.EMBEDDINGS, {"model": "emb", "input": "hi"}, None),
]


@pytest.mark.parametrize(("tenant", "alias", "kind", "body", "text"), TAKES_PART)
def test_which_requests_take_part(
    tenant: str, alias: str, kind: Kind, body: dict[str, Any], text: str | None
) -> None:
    assert key_text(tenant, alias, kind, body, POLICY) == text


def context(body: dict[str, Any], tenant: str = "acme", target: Target = TARGET) -> str:
    return context_hash(tenant, "gpt", Kind.CHAT, target, body)


BASE = chat(SYSTEM, user("How do I reset my password?"))

# a change to the request, and whether the context stays the same
CHANGES: list[tuple[str, dict[str, Any], bool]] = [
    ("the last user turn's text", chat(SYSTEM, user("How can I reset my password?")), True),
    ("the last user turn as parts", chat(SYSTEM, user([{"type": "text", "text": "x"}])), True),
    ("`user`, who asked", {**BASE, "user": "u1"}, True),
    ("`stream`", {**BASE, "stream": True}, True),
    ("the system prompt", chat({"role": "system", "content": "Be long."}, user("x")), False),
    ("no system prompt", chat(user("How do I reset my password?")), False),
    ("the last turn's name", chat(SYSTEM, {**user("x"), "name": "bob"}), False),
    ("temperature", {**BASE, "temperature": 0.5}, False),
    ("response_format", {**BASE, "response_format": {"type": "json_object"}}, False),
    ("tools", {**BASE, "tools": [{"type": "function", "function": {"name": "f"}}]}, False),
    ("tool_choice", {**BASE, "tool_choice": "none"}, False),
    ("max_tokens", {**BASE, "max_tokens": 5}, False),
    ("a provider extra", {**BASE, "top_k": 3}, False),
]


@pytest.mark.parametrize(("what", "changed", "same"), CHANGES, ids=[c[0] for c in CHANGES])
def test_the_context_is_all_but_the_last_user_turn(
    what: str, changed: dict[str, Any], same: bool
) -> None:
    assert (context(changed) == context(BASE)) is same, what


def test_the_context_names_tenant_and_target() -> None:
    assert context(BASE, tenant="other") != context(BASE)
    assert context(BASE, target=Target(provider="openai", model="gpt-4o")) != context(BASE)
    assert context_hash("acme", "fast", Kind.CHAT, TARGET, BASE) != context(BASE)


@pytest.mark.parametrize(
    ("score", "query", "cached", "accepted"),
    [
        (0.97, "How do I reset my password?", "How can I reset my password?", True),
        (0.94, "How do I reset my password?", "How can I reset my password?", False),
        (0.95, "How do I reset my password?", "How can I reset my password?", True),
        (0.99, "How do I enable 2FA?", "How do I disable 2FA?", False),  # the guard
        (0.99, "Convert 5 km to miles", "Convert 5 miles to km", False),
    ],
)
def test_a_neighbour_answers_above_the_threshold_when_the_guard_agrees(
    score: float, query: str, cached: str, accepted: bool
) -> None:
    assert accepts(score, query, cached, 0.95) is accepted


def result(status: Status, response: dict[str, Any] | None) -> Result:
    return Result(id="req_1", tenant="acme", status=status, response=response, finished_at=0)


def test_the_vector_is_read_from_base64_or_floats() -> None:
    floats = [0.25, -1.5, 3.0]
    packed = base64.b64encode(struct.pack("<3f", *floats)).decode()
    data = {"object": "list", "data": [{"embedding": packed}]}
    assert vectors_of(result(Status.SUCCEEDED, data)) == [floats]
    listed = {"data": [{"embedding": floats}]}
    assert vectors_of(result(Status.SUCCEEDED, listed)) == [floats]
    assert vectors_of(result(Status.FAILED, None)) is None
    assert not vectors_of(result(Status.SUCCEEDED, {"data": []}))


def test_collections_and_points_are_named_by_hash() -> None:
    name = collection_name("ac/me: x", TARGET, "all-minilm-l6-v2")
    assert name.startswith("aib_sc_")
    assert name.replace("_", "").isalnum()
    assert name != collection_name("acme", TARGET, "all-minilm-l6-v2")
    assert name != collection_name("ac/me: x", TARGET, "other-model")
    now = time.time()
    one = Point([1.0], "a", "aib:rc:t:a:1", "c", now, now + 1)
    assert one.id == Point([2.0], "b", "aib:rc:t:a:1", "d", now, now + 9).id  # by exact key
    assert one.id != Point([1.0], "a", "aib:rc:t:a:2", "c", now, now + 1).id
