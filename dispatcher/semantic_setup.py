"""The semantic cache's parts, made from settings for `aibroker dispatcher`: its Qdrant (only
when it is asked for, so qdrant-client is imported only then) and its embedder, and the check
that refuses to start a dispatcher whose semantic cache could never embed."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from aibroker.errors import BrokerError
from aibroker.kafka.publisher import Publisher
from aibroker.routes import RouteTable, resolve
from aibroker.settings import CacheSettings, Settings
from aibroker.stores.redis import RedisClient
from aibroker.stores.results import RedisRequestStore
from aibroker.stores.semantic_cache import SemanticIndex
from dispatcher.health import HealthView
from dispatcher.semantic_embed import PoolEmbedder
from schemas.envelopes import Kind
from topics.catalog import TopicNames

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def semantic_index(settings: Settings) -> AsyncIterator[SemanticIndex | None]:
    """The semantic cache's Qdrant, when the cache is on, a Qdrant is set and some tenant or
    alias opted in; else None. qdrant-client is imported only then (the `[semantic]` extra):
    a dispatcher without it starts, unless it was asked for the semantic cache."""
    cfg = settings.cache
    if not semantic_wanted(cfg):
        if cfg.enabled and (cfg.semantic_tenants or cfg.semantic_aliases):
            log.warning("semantic cache off: AIBROKER_CACHE_SEMANTIC_QDRANT_URL is not set")
        yield None
        return
    assert cfg.semantic_qdrant_url is not None
    try:
        from aibroker.stores.qdrant_index import QdrantIndex
    except ImportError as exc:
        raise SystemExit(
            "the semantic cache (AIBROKER_CACHE_SEMANTIC_QDRANT_URL) needs qdrant-client: "
            "install the [semantic] extra"
        ) from exc
    index = QdrantIndex.connect(cfg.semantic_qdrant_url, cfg.semantic_qdrant_api_key)
    try:
        yield index
    finally:
        await index.aclose()


def semantic_model_routed(settings: Settings, routes: RouteTable) -> None:
    """Refuse to start when the semantic cache is asked for and its embeddings model is not
    routed here: every lookup would be a silent miss."""
    cfg = settings.cache
    if not semantic_wanted(cfg):
        return
    try:
        resolve(cfg.semantic_embedding_model, routes, Kind.EMBEDDINGS)
    except BrokerError as exc:
        raise SystemExit(
            f"the semantic cache's embeddings model (AIBROKER_CACHE_SEMANTIC_EMBEDDING_MODEL) "
            f"cannot be used: {exc.message}"
        ) from exc


def semantic_wanted(cfg: CacheSettings) -> bool:
    """The cache is on, a Qdrant is set, and some tenant or alias opted in."""
    opted_in = bool(cfg.semantic_tenants or cfg.semantic_aliases)
    return cfg.enabled and cfg.semantic_qdrant_url is not None and opted_in


def pool_embedder(
    settings: Settings,
    publisher: Publisher,
    routes: RouteTable,
    health: HealthView,
    redis: RedisClient,
) -> PoolEmbedder:
    return PoolEmbedder(
        publisher,
        routes,
        TopicNames(settings.kafka.topic_prefix),
        health,
        RedisRequestStore(redis, settings.redis.ttl_s),
        redis,
        model=settings.cache.semantic_embedding_model,
        redis_timeout_s=settings.cache.lookup_timeout_s,
    )
