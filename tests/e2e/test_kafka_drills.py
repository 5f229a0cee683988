"""Fault drills on Apache Kafka itself, under traffic, each judged by the history checker: the
broker SIGKILLed and restarted on its log dir, the leader of the busiest partitions killed in a
three-broker cluster, a broker frozen past the session timeout, and a rebalance storm of pool
replicas. Each prints one `drill:` line with its figures (run with `-s` to see them)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from aibroker.devstack import apache_kafka
from aibroker.kafka.acceptance import CLOCK_SKEW_S, GIVE_UP_HEADER
from aibroker.kafka.clients import decode, make_admin, wait_for_brokers
from aibroker.settings import KafkaSettings
from loadtest.history import History, provider_calls, read_topic
from loadtest.stack import Stack
from schemas.envelopes import Request
from tests.e2e.chaos import SCALE, mock_in_flight, with_fault
from tests.services import RedisService, apache_cluster
from topics.catalog import TopicNames

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.slow]

StartKafka = Callable[[apache_kafka.Cluster], apache_kafka.Running]
OUTAGE_TRAFFIC = 400 * SCALE
"""Submissions per drill: 20 s of traffic at 20/s, longer than any fault here lasts."""


async def report(name: str, stack: Stack, history: History, **figures: object) -> int:
    """One line of figures; returns `refused_but_run`: 503s whose request ran anyway. Ingress
    flags a refused request cancelled before it answers (`ingress/submission.py`), so a write
    that lands later is neither admitted nor claimed; only one refused while Redis could not
    take the flag may run, and then only if the broker appended it within the clock-skew
    margin after ingress gave up on it (`aibroker/kafka/acceptance.py`)."""
    ran = history.refused_but_run(await provider_calls(stack.mock_url))
    print(f"drill: {name} " + json.dumps({**history.summary(), "refused_but_run": ran, **figures}))
    return ran


@pytest.fixture
def stack_on(redis_svc: RedisService, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """A broker started on a given Kafka, stopped after the test."""
    made: list[Stack] = []

    def start(kafka: KafkaSettings, **env: str) -> Stack:
        stack = Stack(kafka, redis_svc.url, tmp_path / f"stack{len(made)}", extra_env=env)
        made.append(stack)
        stack.start()
        return stack

    yield start
    for stack in made:
        stack.stop()


async def refused_writes(stack: Stack, history: History) -> tuple[int, int]:
    """Of the refused submissions, how many writes landed on the requests topic all the same,
    and how many of those the broker appended within the clock-skew margin after ingress gave
    up on them: the ones only the cancel flag keeps from running."""
    tokens = {r.token for r in history.refused}
    landed = in_margin = 0
    for record in await read_topic(stack.kafka, TopicNames(stack.prefix).requests_interactive):
        if decode(Request, record.value).body["messages"][-1]["content"] not in tokens:
            continue
        landed += 1
        give_up = float(dict(record.headers)[GIVE_UP_HEADER])
        in_margin += record.timestamp / 1000 <= give_up + CLOCK_SKEW_S
    return landed, in_margin


def services_alive(stack: Stack) -> bool:
    """Every service still runs the process it started with: none needed a restart."""
    return all(proc.poll() is None for proc in stack.procs.values())


async def test_the_broker_killed_and_restarted_on_its_log_dir(
    own_kafka: StartKafka,
    stack_on: Callable[..., Stack],
    client_of: Callable[[Stack], httpx.AsyncClient],
    tmp_path: Path,
) -> None:
    """SIGKILL, 8 s down (longer than a produce may wait), restarted on the same log dir:
    ingress answers 503 + Retry-After meanwhile (never a false 202), nothing accepted is lost,
    no service restarts. Traffic flows through the whole outage."""
    cluster = own_kafka(apache_cluster(tmp_path / "kafka"))
    stack = stack_on(KafkaSettings(bootstrap=cluster.bootstrap))
    history = History(model="mock/latency-300")
    down: list[float] = []

    async def crash() -> int:
        in_flight = mock_in_flight(stack)
        cluster.kill(1)
        started = time.monotonic()
        await asyncio.sleep(8)
        await asyncio.to_thread(cluster.start, 1)
        down.append(time.monotonic() - started)
        return in_flight

    await with_fault(stack, history, client_of(stack), crash, n=OUTAGE_TRAFFIC)
    assert any(r.status == 503 for r in history.refused), "no 503 while the broker was down"
    assert services_alive(stack), "a service died instead of riding out the restart"
    ran = await report("broker SIGKILL + restart", stack, history, down_s=round(down[0], 1))
    assert ran * 4 < len(history.refused), "refused requests ran after the broker came back"


async def test_the_busiest_leader_killed_in_a_three_broker_cluster(
    own_kafka: StartKafka,
    stack_on: Callable[..., Stack],
    client_of: Callable[[Stack], httpx.AsyncClient],
    tmp_path: Path,
) -> None:
    """Replication factor 3, min.insync.replicas 2: the broker leading the most partitions of
    the work topics dies for good. Nothing accepted is lost, no client sees a result twice,
    and refusals (503 + Retry-After) fall within the election window, which is measured."""
    cluster = own_kafka(apache_cluster(tmp_path / "kafka", brokers=3))
    kafka = KafkaSettings(bootstrap=cluster.bootstrap)
    await wait_for_brokers(kafka, 3)
    stack = stack_on(kafka, AIBROKER_KAFKA_REPLICATION_FACTOR="3")
    names = TopicNames(stack.prefix)
    topics = [names.requests_interactive, names.dispatch("mock"), names.results, names.outcomes]
    victim = (await leaders(kafka, topics)).most_common(1)[0][0]
    history = History(model="mock/latency-300")
    window: list[float] = []
    killed_at: list[float] = []

    async def kill_leader() -> int:
        in_flight = mock_in_flight(stack)
        killed_at.append(time.time())
        cluster.kill(victim)
        window.append(await election_window(kafka, topics, victim))
        return in_flight

    await with_fault(stack, history, client_of(stack), kill_leader, n=OUTAGE_TRAFFIC)
    late = [r for r in history.refused if r.at > killed_at[0] + window[0] + 10]
    assert not late, f"refusals long after the election: {late[:3]}"
    assert services_alive(stack)
    await report(
        "3 brokers, busiest leader SIGKILL", stack, history, election_window_s=round(window[0], 2)
    )


async def test_a_frozen_broker_resumes(
    own_kafka: StartKafka,
    stack_on: Callable[..., Stack],
    client_of: Callable[[Stack], httpx.AsyncClient],
    tmp_path: Path,
) -> None:
    """SIGSTOP for 10 s, longer than the services' 6 s session timeout, then SIGCONT: the
    groups rebalance, every accepted request still ends once, and no refused one runs (the
    writes ingress gave up on land when the broker resumes; each was flagged cancelled before
    its 503 went out). Ten runs in a row: 0 refused-but-run in each."""
    cluster = own_kafka(apache_cluster(tmp_path / "kafka"))
    stack = stack_on(KafkaSettings(bootstrap=cluster.bootstrap))
    history = History(model="mock/latency-300")

    async def freeze() -> int:
        in_flight = mock_in_flight(stack)
        cluster.freeze(1)
        await asyncio.sleep(10)
        cluster.thaw(1)
        return in_flight

    await with_fault(stack, history, client_of(stack), freeze, n=OUTAGE_TRAFFIC)
    assert services_alive(stack)
    landed, in_margin = await refused_writes(stack, history)
    figures = {"refused_landed": landed, "landed_within_margin": in_margin}
    ran = await report("broker SIGSTOP 10 s", stack, history, **figures)
    assert history.refused, "no submission was refused while the broker was frozen"
    assert ran == 0, "refused requests ran after the broker resumed"


async def test_a_rebalance_storm_of_pool_replicas(
    make_stack: Callable[..., Stack], client_of: Callable[[Stack], httpx.AsyncClient]
) -> None:
    """Pool replicas added and removed (SIGTERM, as a scale-in does) every 2 s under traffic:
    every membership change rebalances the group while calls are in flight."""
    stack = make_stack()
    history = History(model="mock/latency-300")

    async def storm() -> int:
        in_flight = 0
        for i in range(6):
            in_flight += mock_in_flight(stack)
            stack.start_service("consumer", replica=f"consumer-{i}")
            await asyncio.sleep(2)
            if i % 2:
                in_flight += mock_in_flight(stack)
                await asyncio.to_thread(stack.kill, f"consumer-{i - 1}", signal.SIGTERM)
        return in_flight

    await with_fault(stack, history, client_of(stack), storm, n=OUTAGE_TRAFFIC)
    await report("rebalance storm", stack, history)


async def leaders(kafka: KafkaSettings, topics: list[str]) -> Counter[int]:
    """Partitions led by each broker, over these topics."""
    admin = make_admin(kafka)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return Counter(p["leader"] for t in described for p in t["partitions"])


async def election_window(
    kafka: KafkaSettings, topics: list[str], dead: int, timeout_s: float = 60
) -> float:
    """Seconds until no partition of `topics` is led by the dead broker or by no one."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            led = await leaders(kafka, topics)
        except Exception:  # the metadata answer itself may fail during the election
            led = Counter({dead: 1})
        if dead not in led and -1 not in led:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"partitions still led by broker {dead} after {timeout_s}s")
