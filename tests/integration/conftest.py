"""Fixtures of the integration tier beyond the suite's own (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aibroker.settings import ProviderSettings, Settings
from tests.ingress_app import Served, serving


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    """Ingress in this process, with a provider `mock` it never reaches (nothing runs the
    requests: the routes' answers are what these tests read)."""
    mock = ProviderSettings(base_url="http://127.0.0.1:9/v1", api_key="unused")
    async with serving(settings, providers={"mock": mock}) as running:
        yield running
