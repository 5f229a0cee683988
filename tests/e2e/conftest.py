from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from loadtest.stack import Stack
from tests.services import KafkaService, RedisService

ROUTES = """
aliases:
  falls-back:                 # the first target keeps failing with 503s
    - {provider: mock, model: fail-503}
    - {provider: mock, model: echo}
  refused-key:                # the provider refuses the broker's key: next target at once
    - {provider: mock, model: fail-401}
    - {provider: mock, model: echo}
  bad-request:                # the request's own fault: no fallback
    - {provider: mock, model: fail-400}
    - {provider: mock, model: echo}
"""


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One running broker per test module."""
    running = Stack(
        kafka.bootstrap,
        kafka.idempotent,
        redis_svc.url,
        tmp_path_factory.mktemp("stack"),
        routes_yaml=ROUTES,
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture
def make_stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path: Path
) -> Iterator[type[Stack]]:
    """A factory for tests that need a broker of their own (to kill parts of it)."""
    made: list[Stack] = []

    def factory(**env: str) -> Stack:
        s = Stack(
            kafka.bootstrap,
            kafka.idempotent,
            redis_svc.url,
            tmp_path / f"stack{len(made)}",
            extra_env=env,
        )
        made.append(s)
        s.start()
        return s

    try:
        yield factory  # type: ignore[misc]
    finally:
        for s in made:
            s.stop()


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the module's broker, with tenant-a's key."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
async def sdk(stack: Stack) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official openai SDK pointed at the module's broker."""
    async with openai.AsyncOpenAI(
        base_url=f"{stack.url}/v1", api_key=stack.api_key, max_retries=0
    ) as client:
        yield client
