"""Results outlive Redis: after a flush, `GET /v1/requests/{id}`'s state comes back from the
`results` topic (by `aibroker redis-rebuild`'s path and by the sink's own watch), and a
request accepted before the loss but not ended reads as queued, not 404. Real Kafka, a Redis
of the test's own."""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from aibroker.cli import cmd_redis_rebuild
from aibroker.control.plane import control_plane, read_view
from aibroker.kafka.clients import running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.settings import RedisSettings, Settings
from aibroker.stores.redis import connect
from aibroker.stores.results import RedisRequestStore
from aibroker.stores.results_view import ResultsView, intact_marks
from aibroker.stores.tenants import Tenant
from consumers.results.rebuild import ResultsRebuild
from schemas.envelopes import Kind, Mode, Request, Result, Status
from tests.redis_loss import flush, own_redis
from tests.services import RedisService
from tests.waiting import eventually
from topics.apply import apply_topics
from topics.catalog import TopicNames, catalogue

pytestmark = pytest.mark.integration

TTL_S = 3600


@pytest.fixture(scope="module")
def lost_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisService]:
    with own_redis(tmp_path_factory.mktemp("lost-redis")) as service:
        yield service


@pytest.fixture
async def stack(settings: Settings, lost_redis: RedisService) -> AsyncIterator[Stack]:
    await flush(lost_redis.url)
    names = TopicNames(settings.kafka.topic_prefix)
    await apply_topics(settings.kafka, catalogue(names, [], partitions=3))
    ours = settings.model_copy(update={"redis": RedisSettings(url=lost_redis.url)})
    async with connect(ours.redis) as redis, running_producer(ours.kafka) as producer:
        store = RedisRequestStore(redis, TTL_S)
        view = ResultsView(redis, TTL_S)
        yield Stack(
            ours,
            Publisher(producer, names),
            store,
            ResultsRebuild(ours.kafka, names, store, view, TTL_S),
        )


@dataclass
class Stack:
    settings: Settings
    publisher: Publisher
    store: RedisRequestStore
    rebuild: ResultsRebuild

    async def accepted(self, tenant: str) -> Request:
        """A request written to its lane, its state queued (what ingress does)."""
        request = Request(
            id=f"req_{uuid.uuid4().hex}",
            tenant=tenant,
            kind=Kind.CHAT,
            model="mock/echo",
            body={"messages": [{"role": "user", "content": "hi"}]},
            mode=Mode.ASYNC,
            created_at=time.time(),
        )
        await self.publisher.submit(request)
        await self.store.advance(request.id, tenant, Status.QUEUED)
        return request

    async def finished(self, request: Request) -> Result:
        """Its result on `results`, and in Redis (what the sink does)."""
        result = Result(
            id=request.id,
            tenant=request.tenant,
            status=Status.SUCCEEDED,
            response={"object": "chat.completion", "choices": []},
            finished_at=time.time(),
        )
        await self.publisher.result(result, None)
        assert await self.store.finish(result)
        return result


async def test_redis_rebuild_brings_back_results_and_queued_states(stack: Stack) -> None:
    tenant = f"t{uuid.uuid4().hex[:6]}"
    done = [await stack.finished(await stack.accepted(tenant)) for _ in range(20)]
    waiting = [await stack.accepted(tenant) for _ in range(5)]
    assert await stack.store.get(done[0].id) is not None

    await flush(stack.settings.redis.url or "")
    assert await stack.store.get(done[0].id) is None  # what a client saw: 404
    rebuilt = await stack.rebuild.rebuild()

    assert rebuilt.results == 20
    assert rebuilt.queued == 5  # the ended requests' states came with their results
    for result in done:
        state = await stack.store.get(result.id)
        assert state is not None
        assert state.status == Status.SUCCEEDED
        assert state.result == result
        assert state.tenant == tenant
    for request in waiting:
        state = await stack.store.get(request.id)
        assert state is not None
        assert (state.status, state.tenant) == (Status.QUEUED, tenant)
    again = await stack.rebuild.rebuild()  # nothing left to write: first result wins
    assert (again.results, again.queued) == (0, 0)


async def test_a_later_state_wins_over_the_rebuild(stack: Stack) -> None:
    """A request that moved on after the loss (dispatched, or ended) keeps what it is."""
    tenant = f"t{uuid.uuid4().hex[:6]}"
    moved = await stack.accepted(tenant)
    await flush(stack.settings.redis.url or "")
    await stack.store.advance(moved.id, tenant, Status.RUNNING)
    await stack.rebuild.rebuild()
    state = await stack.store.get(moved.id)
    assert state is not None
    assert state.status == Status.RUNNING


async def test_the_sink_rebuilds_by_itself_when_it_finds_redis_empty(stack: Stack) -> None:
    tenant = f"t{uuid.uuid4().hex[:6]}"
    result = await stack.finished(await stack.accepted(tenant))
    watching = asyncio.create_task(stack.rebuild.watch(check_s=0.2))
    try:
        await eventually(lambda: _rebuilt_once(stack), what="the first start's rebuild")
        await flush(stack.settings.redis.url or "")
        started = time.monotonic()

        async def readable() -> bool:
            return await stack.store.get(result.id) is not None

        await eventually(readable, timeout_s=20, what="the result readable again")
        print(f"\nresult readable {time.monotonic() - started:.2f}s after the flush")
        await eventually(lambda: _rebuilt_once(stack, 2), what="the rebuild's end")
    finally:
        watching.cancel()


async def _rebuilt_once(stack: Stack, times: int = 1) -> bool:
    return stack.rebuild.rebuilds >= times


def test_the_marks_cover_every_slot_range() -> None:
    from redis.crc import key_slot

    marks = intact_marks()
    slots = [key_slot(mark.encode()) for mark in marks]
    assert len(set(marks)) == 64
    assert [slot // 256 for slot in slots] == list(range(64))


def test_the_command_rebuilds_on_demand(
    settings: Settings, lost_redis: RedisService, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aibroker redis-rebuild` after a flush: the control plane's view and the results."""
    ours = settings.model_copy(update={"redis": RedisSettings(url=lost_redis.url)})
    names = TopicNames(settings.kafka.topic_prefix)

    async def before_the_loss() -> Result:
        await flush(lost_redis.url)
        await apply_topics(ours.kafka, catalogue(names, [], partitions=3))
        async with connect(ours.redis) as redis, running_producer(ours.kafka) as producer:
            async with control_plane(ours.kafka, names.config, redis, producer) as plane:
                await plane.tenants.put(Tenant(name="acme"))
            store = RedisRequestStore(redis, TTL_S)
            rebuild = ResultsRebuild(ours.kafka, names, store, ResultsView(redis, TTL_S), TTL_S)
            made = Stack(ours, Publisher(producer, names), store, rebuild)
            return await made.finished(await made.accepted("acme"))

    async def after() -> tuple[Tenant | None, object]:
        async with connect(ours.redis) as redis:
            tenants, _ = read_view(redis, names.config)
            return await tenants.get("acme"), await RedisRequestStore(redis, TTL_S).get(done.id)

    done = asyncio.run(before_the_loss())
    asyncio.run(flush(lost_redis.url))
    cmd_redis_rebuild(ours, argparse.Namespace())
    said = capsys.readouterr().out
    assert "the view was empty" in said
    assert "1 results and 0 queued requests rebuilt" in said
    tenant, state = asyncio.run(after())
    assert tenant is not None
    assert state is not None
