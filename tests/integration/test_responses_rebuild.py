"""A deleted response stays deleted through a rebuild of Redis from Kafka: the deletion entry
`DELETE /v1/responses/{id}` writes to the audit log (`aibroker.responses_deleted`) keeps the
rebuild from bringing its state and result back from `results`, and from marking its request
queued again from the requests lane; a response not deleted comes back. Real Kafka, a Redis
of the test's own."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from aibroker.kafka.clients import running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.responses_deleted import deletion
from aibroker.settings import RedisSettings, Settings
from aibroker.stores.redis import connect
from aibroker.stores.results import RedisRequestStore
from aibroker.stores.results_view import ResultsView
from consumers.results.rebuild import ResultsRebuild
from schemas.envelopes import Kind, Mode, Request, Result, Status
from tests.redis_loss import flush, own_redis
from tests.services import RedisService
from topics.apply import apply_topics
from topics.catalog import TopicNames, catalogue

pytestmark = pytest.mark.integration

TTL_S = 3600


@pytest.fixture(scope="module")
def lost_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisService]:
    with own_redis(tmp_path_factory.mktemp("lost-redis")) as service:
        yield service


async def answered(publisher: Publisher, store: RedisRequestStore, tenant: str) -> Result:
    """A response accepted (its request on the lane) and ended (its result on `results` and in
    Redis), as ingress, a pool and the sink leave it."""
    request = Request(
        id=f"resp_{uuid.uuid4().hex}",
        tenant=tenant,
        kind=Kind.RESPONSES,
        model="mock/echo",
        body={"model": "mock/echo", "input": "hi"},
        mode=Mode.ASYNC,
        created_at=time.time(),
    )
    await publisher.submit(request)
    result = Result(
        id=request.id,
        tenant=tenant,
        status=Status.SUCCEEDED,
        response={"id": request.id, "object": "response", "status": "completed", "output": []},
        finished_at=time.time(),
    )
    await publisher.result(result, None)
    assert await store.finish(result)
    return result


@pytest.fixture
async def parts(
    settings: Settings, lost_redis: RedisService
) -> AsyncIterator[tuple[Publisher, RedisRequestStore, ResultsRebuild]]:
    await flush(lost_redis.url)
    names = TopicNames(settings.kafka.topic_prefix)
    await apply_topics(settings.kafka, catalogue(names, [], partitions=3))
    ours = settings.model_copy(update={"redis": RedisSettings(url=lost_redis.url)})
    async with connect(ours.redis) as redis, running_producer(ours.kafka) as producer:
        store = RedisRequestStore(redis, TTL_S)
        rebuild = ResultsRebuild(ours.kafka, names, store, ResultsView(redis, TTL_S), TTL_S)
        yield Publisher(producer, names), store, rebuild


async def test_a_deleted_response_stays_deleted_after_a_rebuild(
    parts: tuple[Publisher, RedisRequestStore, ResultsRebuild], lost_redis: RedisService
) -> None:
    publisher, store, rebuild = parts
    tenant = f"t{uuid.uuid4().hex[:6]}"
    kept = await answered(publisher, store, tenant)
    gone = await answered(publisher, store, tenant)
    await publisher.audit(deletion(gone.id, tenant, actor="key_1", at=time.time()))
    assert await store.delete(gone.id)  # what `DELETE /v1/responses/{id}` does after the entry

    await flush(lost_redis.url)
    rebuilt = await rebuild.rebuild()

    assert rebuilt.results == 1
    assert rebuilt.queued == 0  # nor is the deleted one's request queued again
    assert await store.get(gone.id) is None
    back = await store.get(kept.id)
    assert back is not None
    assert (back.status, back.result) == (Status.SUCCEEDED, kept)
