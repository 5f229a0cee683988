"""The config topic's records and the keeper's decisions, without a broker: each change comes
back from its record as it went in, a record the view cannot use is skipped (never a crash of
the keeper), and a view is read again from where it lacks records."""

from __future__ import annotations

import pytest

from aibroker.control.decisions import START, next_read_from, replay_from
from aibroker.control.entries import decode, encode
from aibroker.stores.control_view import (
    LOOKUP_FIELDS,
    KeyChange,
    Revocation,
    Skip,
    TenantChange,
    script_arguments,
)
from aibroker.stores.tenants import Tenant

pytestmark = pytest.mark.unit

ACME = Tenant(name="acme", models=["mock/*"]).model_dump_json()
KEY = KeyChange(
    "key_1",
    "ab" * 32,
    "acme",
    {"tenant": "acme", "key_id": "key_1", "prefix": "aib_xyz", "name": "backend", "limits": "{}"},
)


@pytest.mark.parametrize(
    "change",
    [
        TenantChange("acme", ACME),
        TenantChange("acme", None),
        KEY,
        KeyChange("key_2", "cd" * 32, None, {"roles": "admin"}),
        Revocation("key_1", "ab" * 32, "acme", 1700000000.25),
    ],
    ids=["tenant", "tenant deleted", "key", "admin key", "revocation"],
)
def test_each_change_comes_back_from_its_record(change: object) -> None:
    assert isinstance(change, TenantChange | KeyChange | Revocation)
    key, value = encode(change)
    assert decode(key, value) == change


def test_records_are_keyed_by_their_object() -> None:
    assert encode(TenantChange("acme", ACME))[0] == b"tenant:acme"
    assert encode(KEY)[0] == b"key:key_1"
    assert encode(Revocation("key_1", "ab" * 32, "acme", 1.0))[0] == b"revoked:key_1"


def test_a_deletion_is_a_record_compaction_keeps() -> None:
    """Not a null value: compaction drops those after `delete.retention.ms`."""
    _, value = encode(TenantChange("acme", None))
    assert value
    assert decode(b"tenant:acme", None) == TenantChange("acme", None)  # one made by hand


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"tenant:acme", b"not json"),
        (b"tenant:acme", b'{"v": 2, "tenant": {"name": "acme"}}'),
        (b"tenant:acme", b'{"tenant": {"name": "acme", "new_field": 1}}'),
        (b"tenant:acme", b'{"v": 1}'),  # neither a tenant nor a deletion: not a deletion
        (b"key:key_1", None),
        (b"key:key_1", b'{"key_id": "key_1"}'),
        (
            b"revoked:key_1",
            b'{"v": 9, "key_id": "k", "digest": "d", "tenant": null, "revoked_at": 1}',
        ),
        (b"policy:cache", b"{}"),
        (None, b"{}"),
    ],
)
def test_a_record_the_view_cannot_use_is_skipped(key: bytes | None, value: bytes | None) -> None:
    assert decode(key, value) == Skip()


@pytest.mark.parametrize(
    ("marker", "expected", "seek"),
    [
        (None, 0, START),  # flushed before anything was read
        (None, 12, START),  # flushed: everything again
        (7, 12, 7),  # a failover to a replica 5 records behind
        (12, 12, None),  # whole
        (15, 12, None),  # another keeper is ahead: this one finds them applied
    ],
)
def test_where_a_keeper_reads_again(marker: int | None, expected: int, seek: int | None) -> None:
    assert replay_from(marker, expected) == seek


def test_the_first_record_read_from_the_start_pins_the_read() -> None:
    """After it, a view without a marker lost it again (a second flush mid-replay)."""
    assert next_read_from(START, 3) == 3
    assert next_read_from(3, 9) == 3
    assert next_read_from(7, 9) == 7


def test_a_keys_lookup_copies_the_leading_pairs_of_its_record() -> None:
    keys, args = script_arguments(KEY, "marker")
    assert keys == [
        "marker",
        "aib:{cp}:keyid:key_1",
        f"aib:{{cp}}:key:{'ab' * 32}",
        "aib:{cp}:keys:acme",
    ]
    kind, key_id, count, *pairs = args
    assert (kind, key_id) == ("key", "key_1")
    lookup = dict(zip(pairs[: int(count) : 2], pairs[1 : int(count) : 2], strict=True))
    assert tuple(lookup) == LOOKUP_FIELDS
    assert lookup["prefix"] == "aib_xyz"
    assert "name" in pairs[int(count) :]  # the record's other fields, after them


def test_every_key_of_the_view_shares_one_slot() -> None:
    from redis.crc import key_slot

    for change in (KEY, TenantChange("acme", ACME), Revocation("k", "d", None, 1.0), Skip()):
        keys, _ = script_arguments(change, "aib:{cp}:applied:aib.config")
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys
