"""Ingress's resources are opened in its lifespan's `async with` and closed however it ends: a
start that fails half-way leaves no Kafka client running and no reply topic behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aibroker.kafka.clients import make_admin
from aibroker.routes import build_route_table
from aibroker.settings import Settings
from ingress.state import open_services

pytestmark = [pytest.mark.integration]


async def reply_topics(settings: Settings) -> set[str]:
    admin = make_admin(settings.kafka)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    return {t for t in topics if t.startswith(f"{settings.kafka.topic_prefix}replies.")}


async def test_a_failed_start_closes_what_it_opened(settings: Settings, tmp_path: Path) -> None:
    failing = settings.model_copy(update={"tenants_file": tmp_path / "missing.yaml"})
    before = asyncio.all_tasks()
    with pytest.raises(FileNotFoundError):  # seeding fails after every client is open
        async with open_services(failing, build_route_table(failing), "ing-start"):
            pytest.fail("started without its tenants file")
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert left == [], left  # the reply consumer's fetcher and metadata tasks among them
    assert await reply_topics(settings) == set()
