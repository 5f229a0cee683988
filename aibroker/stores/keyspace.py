"""Which Redis keys share a hash slot, so that every script and transaction runs on a Redis
Cluster as on one Redis.

A cluster runs a multi-key script only when all its keys hash to one slot, and only the part of
a key between its first `{` and the next `}` (its hash tag) is hashed. So:
- a request's own keys share its id: state, result, cancel flag and claims (`request_key`);
- a tenant's quota shares `{t:<tenant>}`: its buckets, its keys' buckets, admission records and
  monthly spend, because one script charges the tenant and the key at once (`quota_scope`). A
  tenant's quota is one counter however it is stored, so it costs one shard at most;
- a batch's keys share its id, a breaker namespace's keys its name, and usage's "counted" marks
  the slot of the hour's counters they guard (`same_slot_as`).
Every other key is used alone and keeps a plain name.
"""

from __future__ import annotations


def request_key(kind: str, request_id: str) -> str:
    """`aib:<kind>:{<request id>}`: a request's `req`, `res` and `cancel` keys."""
    return f"aib:{kind}:{{{request_id}}}"


def quota_scope(tenant: str, key_id: str | None = None) -> str:
    """The quota scope of a tenant (`{t:acme}`), or of one of its keys (`{t:acme}:k:key_1`):
    the prefix of its keys after `aib:q:`, in the tenant's slot either way."""
    scope = f"{{t:{tenant}}}"
    return scope if key_id is None else f"{scope}:k:{key_id}"


def same_slot_as(key: str) -> str:
    """A hash tag that puts a key in the slot of `key`, a key without one: `{<key>}`."""
    return f"{{{key}}}"
