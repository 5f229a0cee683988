"""The control plane is a log: tenants and keys written through the config topic come back after
Redis loses them (a flush, a view behind), revoked keys and deleted tenants stay gone, and a
miss is not trusted while the view is rebuilt. Real Kafka, a Redis of the test's own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

import pytest
from redis.typing import EncodableT, FieldT

from aibroker.control.plane import ControlPlane, control_plane, read_view
from aibroker.kafka.clients import running_producer
from aibroker.settings import ProviderSettings, RedisSettings, Settings
from aibroker.stores.control_view import KeyChange, ViewRebuilding, record_key, tenant_key
from aibroker.stores.keys import KeyRevoked, KeySpec, hash_key
from aibroker.stores.redis import RedisClient, connect
from aibroker.stores.tenants import Tenant
from tests.ingress_app import serving
from tests.redis_loss import flush, own_redis
from tests.services import RedisService, redis_client
from tests.waiting import eventually
from topics.apply import apply_topics
from topics.catalog import TopicNames, config_topic_spec

pytestmark = pytest.mark.integration

UNREACHABLE = ProviderSettings(base_url="http://127.0.0.1:9/v1", api_key="unused")


@pytest.fixture(scope="module")
def lost_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisService]:
    with own_redis(tmp_path_factory.mktemp("lost-redis")) as service:
        yield service


@pytest.fixture
async def cp_settings(settings: Settings, lost_redis: RedisService) -> Settings:
    await flush(lost_redis.url)
    names = TopicNames(settings.kafka.topic_prefix)
    await apply_topics(settings.kafka, [config_topic_spec(names)])
    return settings.model_copy(update={"redis": RedisSettings(url=lost_redis.url)})


class Planes:
    """Processes that keep the view (each its own Redis client, producer and keeper)."""

    def __init__(self, settings: Settings, stack: AsyncExitStack) -> None:
        self.settings, self._stack = settings, stack
        self.topic = TopicNames(settings.kafka.topic_prefix).config

    async def open(self) -> tuple[RedisClient, ControlPlane]:
        redis = await self._stack.enter_async_context(connect(self.settings.redis))
        producer = await self._stack.enter_async_context(running_producer(self.settings.kafka))
        plane = await self._stack.enter_async_context(
            control_plane(self.settings.kafka, self.topic, redis, producer)
        )
        return redis, plane


@pytest.fixture
async def planes(cp_settings: Settings) -> AsyncIterator[Planes]:
    async with AsyncExitStack() as stack:
        yield Planes(cp_settings, stack)


async def test_tenants_and_keys_come_back_after_a_flush(planes: Planes) -> None:
    _, plane = await planes.open()
    await plane.tenants.put(Tenant(name="acme", models=["mock/*"]))
    await plane.tenants.put(Tenant(name="gone"))
    live, live_info = await plane.keys.add("acme", spec=KeySpec(name="backend"))
    revoked, revoked_info = await plane.keys.add("acme")
    await plane.keys.revoke(revoked_info.key_id)
    doomed, _ = await plane.keys.add("gone")
    await plane.tenants.delete("gone")
    assert await plane.keys.revoke_all("gone") == 1
    rotated, rotated_info = await plane.keys.add("acme")
    new_key, _ = await plane.keys.rotate(rotated_info.key_id, 30.0, time.time())

    await flush(planes.settings.redis.url or "")
    started = time.monotonic()

    async def back() -> bool:  # the whole view: a key may be back before the rest is
        try:
            return await _ready(plane) and await plane.keys.lookup(live) is not None
        except ViewRebuilding:
            return False

    await eventually(back, timeout_s=10, what="the view rebuilt")
    print(f"\nkeys back {time.monotonic() - started:.2f}s after the flush")
    acme = await plane.tenants.get("acme")
    assert acme is not None
    assert acme.models == ["mock/*"]
    assert await plane.tenants.get("gone") is None
    assert [t.name for t in await plane.tenants.list()] == ["acme"]
    assert await plane.keys.lookup(revoked) is None
    assert await plane.keys.lookup(doomed) is None
    record = await plane.keys.record(revoked_info.key_id)
    assert record is not None
    assert record.revoked_at is not None
    old = await plane.keys.lookup(rotated)
    assert old is not None
    assert old.expires_at is not None
    assert await plane.keys.lookup(new_key) is not None
    assert (await plane.keys.record(live_info.key_id) or record).name == "backend"
    assert plane.keeper.rebuilds >= 1


async def test_nothing_is_trusted_until_the_view_is_rebuilt(planes: Planes) -> None:
    """Before any keeper read the log into this Redis (as right after a flush), a miss is
    503-style `ViewRebuilding`, never "no such key" (a 401); and while the view is read again
    a hit is not trusted either (it may be a key whose revocation is not applied yet)."""
    settings = planes.settings
    async with connect(settings.redis) as reader:
        tenants, keys = read_view(reader, planes.topic)
        with pytest.raises(ViewRebuilding):
            await keys.lookup("aib_not_replayed_yet")
        with pytest.raises(ViewRebuilding):
            await tenants.get("acme")
        async with (
            running_producer(settings.kafka) as producer,
            control_plane(settings.kafka, planes.topic, reader, producer) as plane,
        ):
            await plane.tenants.put(Tenant(name="acme"))
            key, _ = await plane.keys.add("acme")
            assert await keys.lookup("aib_unknown") is None  # ready: a miss is a miss
            assert await tenants.get("acme") is not None
            assert await keys.lookup(key) is not None
        await reader.delete(plane.view.ready_key)  # a keeper reading a lost tail again
        with pytest.raises(ViewRebuilding):
            await keys.lookup(key)
        with pytest.raises(ViewRebuilding):
            await tenants.get("acme")


async def test_a_revocation_outlives_a_stale_write_of_its_key(planes: Planes) -> None:
    """A rotation that read the record before a revocation writes the record after it: the
    key stays revoked, in the view and in a view rebuilt from the topic after the loss (whose
    compaction keeps both objects' latest records: the stale record after the revocation)."""
    redis, plane = await planes.open()
    await plane.tenants.put(Tenant(name="acme"))
    key, info = await plane.keys.add("acme")
    digest = hash_key(key)
    before = {str(k): str(v) for k, v in (await redis.hgetall(record_key(info.key_id))).items()}
    await plane.keys.revoke(info.key_id)
    await plane.view.commit([KeyChange(info.key_id, digest, "acme", before)])  # the stale write
    assert await plane.keys.lookup(key) is None
    await flush(planes.settings.redis.url or "")
    await eventually(lambda: _ready(plane), timeout_s=10, what="the view rebuilt")
    assert await plane.keys.lookup(key) is None
    record = await plane.keys.record(info.key_id)
    assert record is not None
    assert record.revoked_at is not None


async def test_a_revoked_key_is_never_added_again(planes: Planes) -> None:
    """The tenants file still lists a key an admin revoked: seeding it again is refused (it
    would have come back under a new id), before and after a loss."""
    _, plane = await planes.open()
    key, info = await plane.keys.add("acme", "aib_listed_in_the_tenants_file")
    await plane.keys.revoke(info.key_id)
    with pytest.raises(KeyRevoked):
        await plane.keys.add("acme", key, KeySpec())
    await flush(planes.settings.redis.url or "")
    await eventually(lambda: _ready(plane), timeout_s=10, what="the view rebuilt")
    with pytest.raises(KeyRevoked):
        await plane.keys.add("acme", key, KeySpec())
    assert await plane.keys.lookup(key) is None


async def test_a_view_left_behind_reads_on_from_its_marker(planes: Planes) -> None:
    """A failover to a replica that had not caught up: the marker and the data are as they
    were some records ago. The keeper applies the lost tail again."""
    redis, plane = await planes.open()
    await plane.tenants.put(Tenant(name="first"))
    marker, _ = await plane.view.position()
    await plane.tenants.put(Tenant(name="second"))
    assert marker is not None
    raw = redis_client(planes.settings.redis.url or "")
    try:  # what the replica had: the marker before `second`, and no `second`
        await raw.delete(tenant_key("second"))
        await raw.set(plane.view.marker_key, marker)
    finally:
        await raw.aclose()

    async def second_back() -> bool:
        try:
            return await plane.tenants.get("second") is not None
        except ViewRebuilding:
            return False

    await eventually(second_back, timeout_s=10, what="the lost tail applied again")
    assert redis is not None


async def test_two_keepers_one_view(planes: Planes) -> None:
    """Writes through either process are in the view when they return, seen by the other."""
    _, one = await planes.open()
    _, two = await planes.open()
    await one.tenants.put(Tenant(name="a"))
    assert await two.tenants.get("a") is not None
    await two.tenants.put(Tenant(name="a", active=False))
    found = await one.tenants.get("a")
    assert found is not None
    assert not found.active
    await flush(planes.settings.redis.url or "")
    await eventually(lambda: _ready(one), timeout_s=10, what="the view rebuilt")
    found = await two.tenants.get("a")
    assert found is not None
    assert not found.active


async def test_an_older_releases_control_plane_is_adopted(planes: Planes) -> None:
    """The first start on a Redis an older release filled writes its tenants and keys to the
    config topic: after a flush they come back from it."""
    raw = redis_client(planes.settings.redis.url or "")
    digest = hash_key("aib_legacy_key_0123456789")
    try:
        await raw.set("aib:tenant:old", Tenant(name="old").model_dump_json())
        await raw.sadd("aib:tenants", "old")
        record: dict[FieldT, EncodableT] = {
            "tenant": "old",
            "key_id": "key_legacy",
            "prefix": "aib_legacy",
            "hash": digest,
            "created_at": 1.0,
        }
        await raw.hset("aib:keyid:key_legacy", mapping=record)
    finally:
        await raw.aclose()
    _, plane = await planes.open()
    assert await plane.tenants.get("old") is not None
    await flush(planes.settings.redis.url or "")
    await eventually(lambda: _ready(plane), timeout_s=10, what="the view rebuilt")
    assert await plane.tenants.get("old") is not None
    found = await plane.keys.lookup("aib_legacy_key_0123456789")
    assert found is not None
    assert found.key_id == "key_legacy"


async def _ready(plane: ControlPlane) -> bool:
    try:
        _, ready = await plane.view.position()
    except ViewRebuilding:
        return False
    return ready


async def test_the_admin_api_writes_through_the_log(cp_settings: Settings) -> None:
    """What the admin API made comes back after a flush: a key the ingress never looked up
    gets 503 while the view is rebuilt (never 401), then 200; a revoked key never gets 200."""
    async with serving(cp_settings, providers={"mock": UNREACHABLE}) as served:
        tenant = await served.tenant(limits={"rpm": 600})
        cold, _ = await served.key(tenant)
        revoked, revoked_id = await served.key(tenant)
        async with served.admin() as admin:
            assert (await admin.delete(f"/admin/v1/keys/{revoked_id}")).status_code == 200
        await flush(cp_settings.redis.url or "")
        started = time.monotonic()
        seen: dict[str, set[int]] = {cold: set(), revoked: set()}

        async def cold_back() -> bool:
            for key in seen:
                async with served.client(key) as client:
                    seen[key].add((await client.get("/v1/models")).status_code)
            return 200 in seen[cold]

        await eventually(cold_back, timeout_s=10, what="the cold key back")
        print(f"\nthe admin API's key back {time.monotonic() - started:.2f}s after the flush")
        assert seen[cold] <= {503, 200}
        assert seen[revoked] <= {503, 401}
        async with served.client(revoked) as client:
            assert (await client.get("/v1/models")).status_code == 401
        async with served.admin() as admin:
            found = await admin.get(f"/admin/v1/tenants/{tenant}")
        assert found.status_code == 200
        assert found.json()["limits"] == {"rpm": 600}
