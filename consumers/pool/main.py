"""`aibroker consumer <pool>`: the external pool, or one pool per local model.

aibroker consumer external [--provider openai]
aibroker consumer embeddings --model all-minilm-l6-v2
aibroker consumer ocr --model pp-ocrv4
aibroker consumer vllm --model qwen2.5-7b-instruct
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

from aibroker.kafka.clients import running_producer
from aibroker.kafka.publisher import Publisher
from aibroker.prices import PriceTable, load_prices
from aibroker.routes import (
    EXTERNAL_GROUP,
    LocalModel,
    ProviderConfig,
    RouteTable,
    build_route_table,
)
from aibroker.runtime.service import WorkerSpec, run_service
from aibroker.settings import Settings
from aibroker.stores.breaker import BreakerPolicy, RedisBreakers
from aibroker.stores.claims import RedisClaimStore
from aibroker.stores.redis import connect
from aibroker.stores.response_cache import RedisResponseCache
from aibroker.telemetry.genai import CallSpans, upstreams
from consumers.pool.engine import ByProvider, Engine
from consumers.pool.guardrails import output_guard
from consumers.pool.handler import Pool
from consumers.pool.responses import ResponsesOverChat
from topics.catalog import TopicNames

log = logging.getLogger(__name__)

HEALTH_EVERY_S = 10.0
POOL_ENGINES = {"embeddings": "embed", "ocr": "ocr", "vllm": "vllm"}
"""`aibroker consumer <pool>` → the engine name local targets carry."""


async def run_external(
    settings: Settings, stop: asyncio.Event, providers: list[str] | None = None
) -> None:
    routes = build_route_table(settings)
    chosen = {n: p for n, p in routes.providers.items() if not providers or n in providers}
    if not chosen:
        raise SystemExit(
            "no provider to serve: set AIBROKER_OPENAI_BASE_URL and AIBROKER_OPENAI_API_KEY, "
            "AIBROKER_ANTHROPIC_API_KEY, AIBROKER_GEMINI_API_KEY or AIBROKER_PROVIDERS"
        )
    names = TopicNames(settings.kafka.topic_prefix)
    engine = external_engine(chosen, drop_unsupported=settings.consumer.drop_unsupported_params)
    topics = [names.dispatch(p) for p in sorted(chosen)]
    prices = load_prices(settings.prices_file, {n: p.kind for n, p in chosen.items()})
    await _run_pool(settings, stop, engine, "pool.external", topics, EXTERNAL_GROUP, None, prices)


def external_engine(providers: dict[str, ProviderConfig], *, drop_unsupported: bool) -> Engine:
    """One engine per provider API (OpenAI-compatible, Anthropic, Gemini), each serving the
    providers of its kind; together, by provider."""
    from consumers.providers.anthropic.lean import AnthropicHttpEngine
    from consumers.providers.anthropic.sdk import AnthropicEngine
    from consumers.providers.gemini.sdk import GeminiEngine
    from consumers.providers.openai.lean import OpenAIHttpEngine
    from consumers.providers.openai.sdk import OpenAICompatibleEngine

    builders: dict[str, Callable[[dict[str, ProviderConfig]], Engine]] = {
        "openai": OpenAIHttpEngine,
        "openai-sdk": OpenAICompatibleEngine,
        "anthropic": lambda of: AnthropicHttpEngine(of, drop_unsupported=drop_unsupported),
        "anthropic-sdk": lambda of: AnthropicEngine(of, drop_unsupported=drop_unsupported),
        "gemini": lambda of_kind: GeminiEngine(of_kind, drop_unsupported=drop_unsupported),
    }
    engines: dict[str, Engine] = {}
    for kind, build in builders.items():
        of_kind = {name: p for name, p in providers.items() if _kind(p) == kind}
        if of_kind:
            engines |= dict.fromkeys(of_kind, build(of_kind))
    return ByProvider(engines)


def _kind(provider: ProviderConfig) -> str:
    """The provider's API, and `-sdk` where it names the official SDK (Gemini has no lean
    path: `google-genai` is its only client)."""
    sdk = provider.client == "sdk" and provider.kind in ("openai", "anthropic")
    return f"{provider.kind}-sdk" if sdk else provider.kind


async def run_local(settings: Settings, stop: asyncio.Event, pool: str, model: str) -> None:
    """One local model's pool; refuses to start, naming the extra, if its engine is missing."""
    routes = build_route_table(settings)
    served = _served(routes, POOL_ENGINES[pool], model)
    names = TopicNames(settings.kafka.topic_prefix)
    engine = await _start_engine(settings, served)
    topic = names.dispatch_local(served.engine, served.name)
    concurrency = settings.vllm.max_num_seqs if served.engine == "vllm" else None
    group = routes.group(served.target)
    prices = load_prices(settings.prices_file)  # a local model costs what the file says, if any
    pool_name = f"pool.{served.engine}"
    await _run_pool(settings, stop, engine, pool_name, [topic], group, concurrency, prices)


async def _start_engine(settings: Settings, served: LocalModel) -> Engine:
    if served.engine == "embed":
        from consumers.local.embeddings import engine as embeddings_engine

        embeddings_engine.require_extra()
        return await embeddings_engine.EmbeddingsEngine.start(served, settings.embeddings)
    if served.engine == "ocr":
        from consumers.local.ocr.engine import OcrEngine

        return await OcrEngine.start(served, settings.ocr)
    from consumers.local.vllm import engine as vllm_engine

    vllm_engine.require_extra()
    return await vllm_engine.VllmEngine.start(served, settings.vllm)


def _served(routes: RouteTable, engine: str, model: str) -> LocalModel:
    served = routes.local.get(model)
    if served is None or served.engine != engine:
        mine = sorted(n for n, m in routes.local.items() if m.engine == engine)
        raise SystemExit(
            f"'{model}' is not a configured {engine} model (configured: {mine or 'none'}); "
            "see AIBROKER_EMBEDDINGS_MODELS, AIBROKER_OCR_MODELS, AIBROKER_VLLM_MODELS"
        )
    return served


async def _run_pool(
    settings: Settings,
    stop: asyncio.Event,
    engine: Engine,
    name: str,
    topics: list[str],
    group: str,
    concurrency: int | None,
    prices: PriceTable,
) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    routes = build_route_table(settings)
    passthrough = frozenset(n for n, p in routes.providers.items() if p.responses_api)
    engine = ResponsesOverChat(engine, passthrough)  # `/v1/responses`, for every engine
    cfg = settings.consumer
    watch = asyncio.create_task(_watch_health(engine, stop))
    try:
        async with connect(settings.redis) as redis, running_producer(settings.kafka) as producer:
            publisher = Publisher(producer, names)
            pool = Pool(
                engine,
                publisher,
                RedisClaimStore(redis, lease_s=cfg.claim_lease_s, done_ttl_s=settings.redis.ttl_s),
                prices,
                RedisBreakers(
                    redis, BreakerPolicy.of(settings.breaker), settings.kafka.topic_prefix
                ),
                owner=owner,
                lease_s=cfg.claim_lease_s,
                cache=RedisResponseCache(redis),
                cache_timeout_s=settings.cache.lookup_timeout_s,
                spans=CallSpans(
                    latest=settings.otel.gen_ai_latest,
                    upstreams=upstreams(routes.providers),
                ),
                guard=output_guard(settings, redis, publisher),
            )
            spec = WorkerSpec(name, topics, group, pool.on_request, concurrency or cfg.concurrency)
            await run_service(settings, producer, [spec], stop, pool.watch_cancels(redis))
    finally:
        watch.cancel()
        await engine.aclose()
    if watch.done() and not watch.cancelled() and watch.result():
        raise SystemExit(f"{name}: the engine failed its health check; exiting to be restarted")


async def _watch_health(engine: Engine, stop: asyncio.Event) -> bool:
    """Stops the pool (to be restarted) when its engine fails a health check; True then."""
    while not stop.is_set():
        await asyncio.sleep(HEALTH_EVERY_S)
        if not await engine.check_health():
            log.error("engine failed its health check; stopping the pool")
            stop.set()
            return True
    return False
