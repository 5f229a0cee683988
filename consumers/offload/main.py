"""`aibroker consumer offload [--provider NAME]`: the offload pool of every provider deployment
whose API has a batch API (OpenAI-compatible, Anthropic, Gemini), reading
`dispatch.<provider>.batch`."""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from aibroker.kafka.clients import running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.prices import load_prices
from aibroker.routes import ProviderConfig, build_route_table
from aibroker.rules.offload import BATCH_APIS
from aibroker.runtime.service import WorkerSpec, run_service
from aibroker.settings import Settings
from aibroker.stores.offload import RedisOffloadStore
from aibroker.stores.redis import connect
from consumers.offload.anthropic_batches import AnthropicBatches
from consumers.offload.api import BatchAPI
from consumers.offload.bounds import Limits
from consumers.offload.gemini_batches import GeminiBatches
from consumers.offload.journal import DurableOffloadStore
from consumers.offload.openai_batches import OpenAIBatches
from consumers.offload.pool import OffloadPool
from topics.apply import apply_topics
from topics.catalog import TopicNames, offload_topic_spec

GROUP = "aib-offload"
log = logging.getLogger(__name__)


def batch_api(config: ProviderConfig, *, drop_unsupported: bool) -> BatchAPI:
    if config.kind == "anthropic":
        return AnthropicBatches(config, drop_unsupported=drop_unsupported)
    if config.kind == "gemini":
        return GeminiBatches(config, drop_unsupported=drop_unsupported)
    return OpenAIBatches(config)


async def run_offload(
    settings: Settings, stop: asyncio.Event, providers: list[str] | None = None
) -> None:
    routes = build_route_table(settings)
    chosen = {
        name: p
        for name, p in routes.providers.items()
        if p.kind in BATCH_APIS and (not providers or name in providers)
    }
    if not chosen:
        raise SystemExit(
            "no provider with a batch API to offload to (OpenAI-compatible, Anthropic, Gemini)"
        )
    names = TopicNames(settings.kafka.topic_prefix)
    cfg = settings.offload
    limits = Limits(
        cfg.max_lines, cfg.max_bytes, cfg.max_age_s, cfg.poll_min_s, cfg.poll_max_s, cfg.margin_s
    )
    drop = settings.consumer.drop_unsupported_params
    apis = {name: batch_api(p, drop_unsupported=drop) for name, p in chosen.items()}
    prices = load_prices(settings.prices_file, {n: p.kind for n, p in chosen.items()})
    ttl_s = int(cfg.completion_window_s + cfg.margin_s + 86_400)
    await apply_topics(settings.kafka, [offload_topic_spec(names)])
    try:
        async with connect(settings.redis) as redis, running_producer(settings.kafka) as producer:
            store = DurableOffloadStore(
                RedisOffloadStore(redis), producer, settings.kafka, names.offload, ttl_s=ttl_s
            )
            try:  # the view rebuilt before any line is read, if it was lost
                await store.whole()
            except RedisError as exc:  # every read waits on it again: `whole` before each
                log.warning("offload view not checked at start (%r)", exc)
            pool = OffloadPool(
                apis,
                store,
                Publisher(producer, names),
                prices,
                limits,
                state_ttl_s=ttl_s,
            )
            topics = [names.dispatch_batch(p) for p in sorted(chosen)]
            # Each line's handler waits until its provider batch is saved: the pool holds up
            # to a full batch of them at once.
            spec = WorkerSpec("pool.offload", topics, GROUP, pool.on_request, cfg.max_lines)
            await run_service(settings, producer, [spec], stop, pool.run())
    finally:
        await asyncio.gather(*(api.aclose() for api in apis.values()))
