"""Fixtures of the integration tier beyond the suite's own (tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from aibroker.devstack.embedded import free_port
from aibroker.devstack.procs import stop_process
from aibroker.settings import ProviderSettings, Settings
from tests.ingress_app import Served, serving


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    """Ingress in this process, with a provider `mock` it never reaches (nothing runs the
    requests: the routes' answers are what these tests read)."""
    mock = ProviderSettings(base_url="http://127.0.0.1:9/v1", api_key="unused")
    async with serving(settings, providers={"mock": mock}) as running:
        yield running


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """The mock provider (OpenAI, Anthropic and Gemini APIs) as a process of its own."""
    port = free_port()
    mock = subprocess.Popen(
        [sys.executable, "-m", "loadtest.mock_provider", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/_stats", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        stop_process(mock, timeout_s=10)
