"""The exact cache's key and policy (`aibroker/rules/cache_key.py`): which body fields are in
the key, that the hash is canonical, and when a request is looked up, stored or bypassed."""

from __future__ import annotations

from typing import Any

import pytest

from aibroker.rules.cache_key import (
    CachePolicy,
    Plan,
    Use,
    body_hash,
    cache_key,
    directive,
    plan,
    scope_pattern,
)
from schemas.envelopes import CacheDirective, CacheMark, Kind, Target

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {
    "model": "gpt",
    "messages": [{"role": "user", "content": "hi"}],
    "temperature": 0,
}
TARGET = Target(provider="openai", model="gpt-4o-mini")

# field, a value to add or change it to, whether it is in the key
FIELDS: list[tuple[str, Any, bool]] = [
    ("messages", [{"role": "user", "content": "bye"}], True),
    ("model", "other", True),
    ("temperature", 0.5, True),
    ("top_p", 0.9, True),
    ("seed", 7, True),
    ("max_tokens", 10, True),
    ("max_completion_tokens", 10, True),
    ("stop", ["\n"], True),
    ("n", 2, True),
    ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}], True),
    ("tool_choice", "required", True),
    ("parallel_tool_calls", False, True),
    ("response_format", {"type": "json_object"}, True),
    ("logit_bias", {"50256": -100}, True),
    ("logprobs", True, True),
    ("top_logprobs", 2, True),
    ("presence_penalty", 0.1, True),
    ("frequency_penalty", 0.1, True),
    ("reasoning_effort", "high", True),
    ("modalities", ["text"], True),
    ("service_tier", "flex", True),
    ("input", ["a"], True),
    ("dimensions", 64, True),
    ("encoding_format", "base64", True),
    ("top_k", 40, True),  # a provider-specific extra: unknown fields are in the key
    ("thinking", {"type": "enabled", "budget_tokens": 1024}, True),
    ("user", "alice", False),
    ("stream", True, False),
    ("stream_options", {"include_usage": True}, False),
    ("metadata", {"job": "nightly"}, False),
    ("store", True, False),
]


@pytest.mark.parametrize(("field", "value", "in_key"), FIELDS, ids=[f[0] for f in FIELDS])
def test_each_field_is_in_the_key_or_not(field: str, value: Any, in_key: bool) -> None:
    changed = {**BASE, field: value}
    assert (body_hash(changed) != body_hash(BASE)) is in_key


def test_the_hash_is_canonical() -> None:
    reordered = {"temperature": 0.0, "messages": BASE["messages"], "model": "gpt"}
    assert body_hash(reordered) == body_hash(BASE)
    nested = {**BASE, "response_format": {"type": "json_schema", "json_schema": {"b": 1, "a": 2}}}
    swapped = {
        **BASE,
        "response_format": {"json_schema": {"a": 2.0, "b": 1}, "type": "json_schema"},
    }
    assert body_hash(nested) == body_hash(swapped)
    assert body_hash({**BASE, "top_p": 0.5}) != body_hash({**BASE, "top_p": 0.50001})


def test_the_key_holds_the_tenant_alias_and_target() -> None:
    key = cache_key("acme", "gpt", Kind.CHAT, TARGET, BASE)
    assert key != cache_key("other", "gpt", Kind.CHAT, TARGET, BASE)
    assert key != cache_key("acme", "gpt2", Kind.CHAT, TARGET, BASE)
    assert key != cache_key(
        "acme", "gpt", Kind.CHAT, Target(provider="azure", model=TARGET.model), BASE
    )
    assert key != cache_key(
        "acme", "gpt", Kind.CHAT, Target(provider="openai", model="gpt-4o"), BASE
    )
    assert key == cache_key("acme", "gpt", Kind.CHAT, TARGET, {**BASE, "user": "bob"})


def test_names_cannot_reach_into_another_tenants_keys() -> None:
    """`a:b` and glob characters are encoded: tenant `a`'s pattern never matches tenant `a:b`."""
    key = cache_key("a:b", "m", Kind.CHAT, TARGET, BASE)
    assert key.startswith("aib:rc:a%3Ab:m:")
    assert scope_pattern("a") == "aib:rc:a:*:*"
    assert scope_pattern("*") == "aib:rc:%2A:*:*"
    assert scope_pattern("a", "x/y") == "aib:rc:a:x%2Fy:*"


ON = CachePolicy()
D = CacheDirective


@pytest.mark.parametrize(
    ("body", "said", "policy", "expected"),
    [
        (BASE, D.DEFAULT, ON, Plan(Use.LOOKUP, 3600)),
        ({**BASE, "temperature": 0.7}, D.DEFAULT, ON, Plan(Use.BYPASS)),
        ({"model": "gpt", "messages": []}, D.DEFAULT, ON, Plan(Use.BYPASS)),
        ({"model": "gpt", "messages": [], "seed": 1}, D.DEFAULT, ON, Plan(Use.LOOKUP, 3600)),
        ({**BASE, "temperature": 0.7}, D.ALLOW, ON, Plan(Use.LOOKUP, 3600)),
        (
            {**BASE, "temperature": 0.7},
            D.DEFAULT,
            CachePolicy(any_temperature_tenants=frozenset({"acme"})),
            Plan(Use.LOOKUP, 3600),
        ),
        (BASE, D.NO_CACHE, ON, Plan(Use.STORE, 3600)),
        ({**BASE, "temperature": 0.7}, D.NO_CACHE, ON, Plan(Use.BYPASS)),
        (BASE, D.NO_STORE, ON, Plan(Use.BYPASS)),
        (BASE, D.DEFAULT, CachePolicy(enabled=False), Plan(Use.BYPASS)),
        (BASE, D.DEFAULT, CachePolicy(tenant_ttl_s={"acme": 60}), Plan(Use.LOOKUP, 60)),
        (BASE, D.DEFAULT, CachePolicy(tenant_ttl_s={"acme": 0}), Plan(Use.BYPASS)),
        (
            BASE,
            D.DEFAULT,
            CachePolicy(tenant_ttl_s={"acme": 60}, alias_ttl_s={"gpt": 5}),
            Plan(Use.LOOKUP, 5),
        ),
        (BASE, D.DEFAULT, CachePolicy(alias_ttl_s={"gpt": 0}), Plan(Use.BYPASS)),
    ],
)
def test_policy(
    body: dict[str, Any], said: CacheDirective, policy: CachePolicy, expected: Plan
) -> None:
    assert plan("acme", "gpt", Kind.CHAT, body, said, policy) == expected


def test_embeddings_are_deterministic() -> None:
    body = {"model": "e", "input": ["x"]}
    assert plan("acme", "e", Kind.EMBEDDINGS, body, D.DEFAULT, ON).use is Use.LOOKUP


def test_the_mark_of_a_provider_answer() -> None:
    assert Plan(Use.LOOKUP, 1).mark is CacheMark.MISS
    assert Plan(Use.STORE, 1).mark is CacheMark.BYPASS
    assert Plan(Use.BYPASS).mark is CacheMark.BYPASS


@pytest.mark.parametrize(
    ("cache_control", "opt_in", "expected"),
    [
        ([], None, D.DEFAULT),
        (["no-cache"], None, D.NO_CACHE),
        (["No-Store"], None, D.NO_STORE),
        (["no-cache, no-store"], None, D.NO_STORE),
        (["max-age=0", "no-cache"], "allow", D.NO_CACHE),
        ([], "allow", D.ALLOW),
        ([], "hit", D.DEFAULT),
    ],
)
def test_directive(cache_control: list[str], opt_in: str | None, expected: CacheDirective) -> None:
    assert directive(cache_control, opt_in) is expected
