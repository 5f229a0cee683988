"""Whose a failed attempt is, decided on the target's breaker as the pool left it (real Kafka
and Redis, the shipped breaker and retry settings): a failure that opened the breaker costs
its request no attempt before the dispatcher's view has caught up, a failure other calls
share costs none, a wait past the deadline expires the request, and a failure of its own
among healthy calls still ends it after its attempts."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer

from aibroker.kafka.clients import decode, make_consumer
from aibroker.kafka.publisher import DEST_HEADER, DUE_HEADER
from aibroker.routes import Route, RouteTarget
from aibroker.rules.breaker import Reading, State
from aibroker.settings import BreakerSettings, DispatcherSettings, Settings
from aibroker.stores.breaker import BreakerPolicy
from aibroker.stores.redis import RedisClient
from dispatcher.policy import RetryPolicy
from dispatcher.service import Dispatcher
from schemas.envelopes import ErrorInfo, Kind, Mode, Outcome, Request, Result, Status, Target
from tests.dispatchers import running_dispatcher
from tests.records import read, record
from tests.routes import two_providers
from topics.apply import apply_topics
from topics.catalog import RETRY_DELAYS, TopicNames, catalogue

pytestmark = pytest.mark.integration

BIG = Target(provider="a", model="big")
ROUTES = two_providers(only_a=Route(targets=[RouteTarget(provider="a", model="big")]))
BREAKERS = BreakerPolicy.of(BreakerSettings())
DEFAULTS = DispatcherSettings()
RETRIES = RetryPolicy(DEFAULTS.max_attempts, DEFAULTS.backoff_base_s, DEFAULTS.backoff_max_s)
LAST = DEFAULTS.max_attempts
DOWN = ErrorInfo(
    message="mock 500", type="server_error", retryable=True, http_status=502, provider_status=500
)


@pytest.fixture
async def names(settings: Settings) -> TopicNames:
    names = TopicNames(settings.kafka.topic_prefix)
    topics = [names.dispatch("a"), names.dispatch("b")]
    await apply_topics(settings.kafka, catalogue(names, topics, partitions=1))
    return names


@pytest.fixture
async def dispatcher(
    settings: Settings, names: TopicNames, redis: RedisClient
) -> AsyncIterator[Dispatcher]:
    """A dispatcher whose view of the breakers is never refreshed: it reads all closed, as a
    view a refresh behind the pool does."""
    async with running_dispatcher(
        settings,
        names,
        redis,
        routes=ROUTES,
        retries=RETRIES,
        breakers=BREAKERS,
        health_refresh_s=3600,
    ) as dispatcher:
        yield dispatcher


@pytest.fixture
async def listen(settings: Settings, names: TopicNames) -> AsyncIterator[AIOKafkaConsumer]:
    topics = [names.dispatch("a"), names.results, names.dlq]
    topics += [names.retry(d) for d in RETRY_DELAYS]
    consumer = make_consumer(settings.kafka, *topics, group_id=None)
    await consumer.start()
    yield consumer
    await consumer.stop()


def failed_on_big(target_attempt: int, **fields: object) -> Request:
    """An async request whose attempt `target_attempt` on `a/big` (its only target) failed."""
    return Request(
        id=f"req_{uuid.uuid4().hex}",
        tenant=f"t{uuid.uuid4().hex[:8]}",
        kind=Kind.CHAT,
        model="only_a",
        body={"messages": [{"role": "user", "content": "hi"}]},
        mode=Mode.ASYNC,
        created_at=time.time(),
        target=BIG,
        attempt=target_attempt,
        target_attempt=target_attempt,
        **fields,
    )


async def calls(dispatcher: Dispatcher, *oks: bool) -> None:
    """The pool's record of calls on `a/big`, in order (True: it went well)."""
    for ok in oks:
        await dispatcher.breakers.record(BIG, ok, time.time())


async def test_a_breaker_opens_on_min_calls_failures_in_a_row_whatever_its_window_holds(
    dispatcher: Dispatcher,
) -> None:
    """A window that began with healthy traffic: 40 successes, then the target fails every
    call. The failure rate of the window would open it only after 40 failures."""
    await calls(dispatcher, *[True] * 40, *[False] * (BREAKERS.min_calls - 1))
    assert await dispatcher.breakers.read(BIG, time.time()) == Reading(
        State.CLOSED, BREAKERS.min_calls - 1
    )
    assert await dispatcher.breakers.record(BIG, False, time.time())  # opened
    assert await dispatcher.breakers.read(BIG, time.time()) == Reading(
        State.OPEN, BREAKERS.min_calls
    )
    await calls(dispatcher, True)  # one call that got through: the run of failures ends
    assert (await dispatcher.breakers.read(BIG, time.time())).failing == 0


async def test_the_failure_that_opened_the_breaker_costs_no_attempt(
    dispatcher: Dispatcher, names: TopicNames, listen: AIOKafkaConsumer
) -> None:
    """Its last attempt failed and opened the breaker; the dispatcher's view still reads it
    closed. It waits out the cool-down, its attempts untouched (it used to end `failed`)."""
    await calls(dispatcher, *[False] * BREAKERS.min_calls)
    failed = failed_on_big(LAST)
    now = time.time()
    await dispatcher.on_outcome(record(Outcome(request=failed, error=DOWN), failed.id))
    [held] = await read(listen, 1)
    assert held.topic.startswith(names.retry(""))
    headers = dict(held.headers)
    assert headers[DEST_HEADER] == names.dispatch("a").encode()
    assert float(headers[DUE_HEADER]) >= now + BREAKERS.cooldown_s
    waiting = decode(Request, held.value)
    assert (waiting.attempt, waiting.target_attempt) == (LAST + 1, LAST)


async def test_a_failure_other_calls_share_costs_no_attempt(
    dispatcher: Dispatcher, names: TopicNames, listen: AIOKafkaConsumer
) -> None:
    """Closed, but since the target's last success other calls failed too (more failures in a
    row than this request's own attempts): the target's failure, retried after its backoff."""
    await calls(dispatcher, True, *[False] * (LAST + 1))
    failed = failed_on_big(LAST)
    now = time.time()
    await dispatcher.on_outcome(
        record(Outcome(request=failed, error=DOWN, retry_after=1.0), failed.id)
    )
    [held] = await read(listen, 1)
    assert held.topic.startswith(names.retry(""))
    assert float(dict(held.headers)[DUE_HEADER]) >= now + 1.0  # never before Retry-After
    assert decode(Request, held.value).target_attempt == LAST


async def test_a_wait_past_the_deadline_expires_the_request(
    dispatcher: Dispatcher, names: TopicNames, listen: AIOKafkaConsumer
) -> None:
    await calls(dispatcher, *[False] * BREAKERS.min_calls)
    failed = failed_on_big(LAST, deadline=time.time() + BREAKERS.cooldown_s / 2)
    await dispatcher.on_outcome(record(Outcome(request=failed, error=DOWN), failed.id))
    [ended] = await read(listen, 1)
    assert ended.topic == names.results
    assert decode(Result, ended.value).status is Status.EXPIRED  # never failed


async def test_a_failure_of_its_own_among_healthy_calls_ends_it_after_its_attempts(
    dispatcher: Dispatcher, names: TopicNames, listen: AIOKafkaConsumer
) -> None:
    """Other calls succeed between this request's failures: its 5xx is its own."""
    await calls(dispatcher, False, True, True, False, True, False, True, False)
    failed = failed_on_big(LAST)
    await dispatcher.on_outcome(record(Outcome(request=failed, error=DOWN), failed.id))
    got = await read(listen, 2)
    [ended] = [r for r in got if r.topic == names.results]
    assert decode(Result, ended.value).status is Status.FAILED
    assert [r.topic for r in got if r.topic == names.dlq] == [names.dlq]  # exhausted
