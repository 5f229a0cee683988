"""Which keys share a Redis Cluster hash slot, the cluster URL, and the upgrade's new names."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from aibroker.stores.keyspace import quota_scope, request_key, same_slot_as
from aibroker.stores.redis import cluster_url
from aibroker.stores.retag import Owner, new_name

pytestmark = pytest.mark.unit


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def test_a_requests_keys_share_its_slot_and_requests_spread() -> None:
    keys = [request_key(kind, "req_01ABC") for kind in ("req", "res", "cancel", "claim")]
    assert {slot(k) for k in keys} == {slot("req_01ABC")}
    assert len({slot(request_key("req", f"req_{i}")) for i in range(100)}) > 50


def test_a_tenants_quota_and_its_keys_quota_share_the_tenants_slot() -> None:
    tenant, key = quota_scope("acme"), quota_scope("acme", "key_1")
    names = [f"aib:q:{tenant}:rpm", f"aib:q:{key}:tpm", f"aib:q:{tenant}:adm:req_9"]
    assert {slot(n) for n in names} == {slot("t:acme")}
    assert slot(f"aib:q:{quota_scope('other')}:rpm") != slot("t:acme")


def test_same_slot_as_a_key_without_a_tag() -> None:
    assert slot(f"{same_slot_as('aib:batch:b_1')}:lines") == slot("aib:batch:b_1")


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("redis+cluster://r-0:6379/0", "redis://r-0:6379/0"),
        ("rediss+cluster://u:p@r-0:6380", "rediss://u:p@r-0:6380"),
        ("redis://r-0:6379/0", None),
        ("unix:///run/redis.sock", None),
    ],
)
def test_a_cluster_is_named_by_its_url_scheme(url: str, plain: str | None) -> None:
    assert cluster_url(url) == plain


async def _acme(_: str) -> str | None:
    return "acme"


async def _gone(_: str) -> str | None:
    return None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("aib:req:req_1", "aib:req:{req_1}"),
        ("aib:res:req_1", "aib:res:{req_1}"),
        ("aib:cancel:req_1", "aib:cancel:{req_1}"),
        ("aib:claim:req_1:2", "aib:claim:{req_1}:2"),
        ("aib:batch:b_1:lines", "{aib:batch:b_1}:lines"),
        ("aib:q:t:acme:spend:202611", "aib:q:{t:acme}:spend:202611"),
        ("aib:q:t:acme:warned:202611:80", "aib:q:{t:acme}:warned:202611:80"),
        ("aib:q:k:key_1:conc", "aib:q:{t:acme}:k:key_1:conc"),
        ("aib:q:adm:req_1", "aib:q:{t:acme}:adm:req_1"),
        ("aib:batch:b_1", None),  # used alone: keeps its name
        ("aib:tenant:acme", None),
        ("aib:req:{req_1}", None),  # already moved
        ("aib:q:{t:acme}:rpm", None),
    ],
)
async def test_the_upgrade_renames_each_old_key(old: str, new: str | None) -> None:
    assert await new_name(old, Owner(_acme, _acme)) == new


async def test_a_key_whose_owner_is_gone_stays() -> None:
    assert await new_name("aib:q:k:key_1:rpm", Owner(_gone, _gone)) is None
    assert await new_name("aib:q:adm:req_1", Owner(_gone, _gone)) is None
