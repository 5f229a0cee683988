from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web

from aibroker.devstack.embedded import free_port
from loadtest.stack import Stack
from tests.e2e.offloading import Offloading
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


WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
"""A function tool for the provider tests."""


@contextlib.contextmanager
def running_stack(
    kafka: KafkaService, redis_svc: RedisService, logs: Path, **options: Any
) -> Iterator[Stack]:
    """A broker started on the test services, stopped however the block ends."""
    running = Stack(kafka.settings, redis_svc.url, logs, **options)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One running broker per test module."""
    with running_stack(kafka, redis_svc, tmp_path_factory.mktemp("stack"), routes_yaml=ROUTES) as s:
        yield s


def with_own_responses_api(running: Stack) -> None:
    """Adds `own` and `ownsdk` to a stack not yet started: the mock's OpenAI API with a
    Responses API of its own (`responses_api`), the second called through the openai SDK."""
    providers = json.loads(running.env()["AIBROKER_PROVIDERS"])
    providers["own"] = {**providers["mock"], "responses_api": True}
    providers["ownsdk"] = {**providers["own"], "client": "sdk"}
    running.extra_env["AIBROKER_PROVIDERS"] = json.dumps(providers)


async def until_ended(sdk: openai.AsyncOpenAI, response_id: str) -> Any:
    """Poll as the SDK's users do, until the response leaves queued / in_progress."""
    async with asyncio.timeout(30):
        while True:
            response = await sdk.responses.retrieve(response_id)
            if response.status not in ("queued", "in_progress"):
                return response
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def offload(stack: Stack) -> Iterator[Offloading]:
    """The module stack's offload pool, assigned its partitions (the offload tests)."""
    pool = Offloading(stack)
    pool.start()
    pool.assigned()
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture
async def knobs(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The mock's batch knobs, back to their defaults after the test."""
    async with httpx.AsyncClient(base_url=stack.mock_url) as mock:
        yield mock
        await mock.post("/_control/batches", json={})


async def guarded_tenant(
    admin: httpx.AsyncClient, stack: Stack, policy: dict[str, Any]
) -> tuple[str, str]:
    """A new tenant with this guardrail policy, and a key of it."""
    name = f"guarded-{uuid.uuid4().hex[:8]}"
    assert (await admin.put(f"/tenants/{name}", json={})).is_success
    put = await admin.put(f"/guardrails/{name}", json=policy)
    assert put.status_code == 200, put.text
    return name, stack.new_key(name)


@pytest.fixture
async def sdk_of(stack: Stack) -> AsyncIterator[Any]:
    """openai SDK clients of the module's broker, one per key asked for (no retries)."""
    made: list[openai.AsyncOpenAI] = []

    def make(key: str) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(
            base_url=f"{stack.url}/v1", api_key=key, max_retries=0, timeout=30
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def wire_body(stack: Stack, api: str) -> dict[str, Any]:
    """The last body the mock provider received through `api` (openai, anthropic, gemini)."""
    async with httpx.AsyncClient() as client:
        body: dict[str, Any] = (await client.get(f"{stack.mock_url}/_last/{api}")).json()
        return body


@pytest.fixture
def make_stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path: Path
) -> Iterator[type[Stack]]:
    """A factory for tests that need a broker of their own (to kill parts of it)."""
    made: list[Stack] = []

    def factory(**env: str) -> Stack:
        s = Stack(
            kafka.settings,
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
async def client_of() -> AsyncIterator[Callable[[Stack], httpx.AsyncClient]]:
    """HTTP clients of any broker the test started, with its tenant-a key."""
    clients: list[httpx.AsyncClient] = []

    def make(stack: Stack) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {stack.api_key}"}
        client = httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=90)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the module's broker, with tenant-a's key."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the module's admin API."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(
        base_url=f"{stack.url}/admin/v1", headers=headers, timeout=30
    ) as client:
        yield client


@pytest.fixture
async def sdk(stack: Stack) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official openai SDK pointed at the module's broker."""
    async with openai.AsyncOpenAI(
        base_url=f"{stack.url}/v1", api_key=stack.api_key, max_retries=0
    ) as client:
        yield client


@dataclass
class Receiver:
    url: str
    answers: list[int] = field(default_factory=list)
    """Statuses to answer with, in turn; 200 once they run out."""
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    other: int = 0
    """Messages received at `url + "2"` (always answered 200)."""
    slow: int = 0
    """Messages received at `/slow` (never answered in time)."""
    moved: int = 0
    """Messages received at `/moved` (answered 302 to `url + "2"`)."""

    def at(self, path: str) -> str:
        return self.url.removesuffix("/hook") + path


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    box = Receiver(f"http://127.0.0.1:{port}/hook")

    async def hook(request: web.Request) -> web.Response:
        box.got.append((dict(request.headers), await request.read()))
        return web.Response(status=box.answers.pop(0) if box.answers else 200)

    async def hook2(_: web.Request) -> web.Response:
        box.other += 1
        return web.Response(status=200)

    async def slow(_: web.Request) -> web.Response:
        box.slow += 1
        await asyncio.sleep(60)
        return web.Response(status=200)

    async def moved(_: web.Request) -> web.Response:
        box.moved += 1
        raise web.HTTPFound(box.url + "2")

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/hook2", hook2)
    app.router.add_post("/slow", slow)
    app.router.add_post("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield box
    await runner.cleanup()
