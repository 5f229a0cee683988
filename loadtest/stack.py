"""The broker as real processes (what `aibroker dev` runs) on a given Kafka and Redis, with its
own topic prefix and the mock provider as provider `mock`: for the tests and the benchmark.
Its ports are reserved (`aibroker/devstack/reservations.py`), so two suites, or a suite and
`aibroker dev`, started in the same instant never share one."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from aibroker.devstack import apache_kafka, embedded
from aibroker.devstack.procs import stop_process
from aibroker.devstack.reservations import PortBook
from aibroker.settings import DevSettings, KafkaSettings, group_environment

SERVICES = {
    "dispatcher": ["dispatcher"],
    "consumer": ["consumer", "external"],
    "results": ["results"],
    "webhooks": ["webhooks"],
    "batches": ["batches"],
    "ingress": ["ingress"],
}
EMBEDDINGS_MODEL = "all-minilm-l6-v2"
OCR_MODEL = "pp-ocrv4"


@dataclass
class Stack:
    kafka: KafkaSettings
    """The Kafka it runs on (bootstrap, engine, security), handed to every service."""
    redis_url: str
    logs: Path
    mock_latency_ms: float = 0.0
    routes_yaml: str | None = None
    """Model aliases (the routes file's YAML), if any."""
    prices_yaml: str = 'mock/echo: {input: "0.50", output: "1.50"}\n'
    """Prices for the mock's models (the prices file, over genai-prices' defaults)."""
    extra_env: dict[str, str] = field(default_factory=dict)
    apis: tuple[str, ...] = ("openai", "anthropic", "gemini")
    """The mock's APIs served as providers: `mock` (OpenAI), `claude`, `gemini`."""
    embeddings: bool = False
    """Also run the embeddings pool, serving all-MiniLM-L6-v2 (the `[embeddings]` extra)."""
    ocr: bool = False
    """Also run the OCR pool, serving pp-ocrv4 through RapidOCR (the `[ocr]` extra)."""
    rag: bool = False
    """Also run the RAG worker, on Qdrant's local mode in the logs directory unless
    AIBROKER_RAG_QDRANT_URL is given (needs `embeddings` for its vectors)."""
    prefix: str = field(default_factory=lambda: f"e{uuid.uuid4().hex[:8]}.")
    ports: PortBook = field(default_factory=PortBook)
    """What the stack reserved (its ingress, mock and metrics ports); released by `stop()`."""
    ingress_port: int = 0
    """0: a free port, reserved."""
    mock_port: int = 0
    """0: a free port, reserved."""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)
    api_key: str = ""
    admin_key: str = field(default_factory=lambda: f"aib_admin_{uuid.uuid4().hex}")
    producer_secret: str = field(default_factory=lambda: uuid.uuid4().hex)
    """`tenant-a`'s secret for signing envelopes it writes straight to Kafka (`signing`)."""
    envelope_secret: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        self.ingress_port = self.ingress_port or self.ports.any_free("a test stack's ingress")
        self.mock_port = self.mock_port or self.ports.any_free("a test stack's mock provider")

    @property
    def bootstrap(self) -> str:
        assert self.kafka.bootstrap
        return self.kafka.bootstrap

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    @property
    def mock_url(self) -> str:
        return f"http://127.0.0.1:{self.mock_port}"

    def env(self) -> dict[str, str]:
        every = {
            "mock": {"base_url": f"{self.mock_url}/v1", "api_key": "mock", "timeout_s": 10},
            # The same mock, through its Anthropic Messages API.
            "claude": {
                "base_url": self.mock_url,
                "api_key": "mock",
                "timeout_s": 10,
                "kind": "anthropic",
            },
            # ...and through its Gemini API.
            "gemini": {
                "base_url": self.mock_url,
                "api_key": "mock",
                "timeout_s": 10,
                "kind": "gemini",
            },
        }
        kinds = {"mock": "openai", "claude": "anthropic", "gemini": "gemini"}
        providers = {name: cfg for name, cfg in every.items() if kinds[name] in self.apis}
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIBROKER_")},
            **group_environment("kafka", self.kafka),
            "AIBROKER_KAFKA_TOPIC_PREFIX": self.prefix,
            "AIBROKER_KAFKA_PARTITIONS": "3",
            "AIBROKER_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "AIBROKER_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "AIBROKER_REDIS_URL": self.redis_url,
            "AIBROKER_INGRESS_PORT": str(self.ingress_port),
            "AIBROKER_PROVIDERS": json.dumps(providers),
            "AIBROKER_DISPATCHER_BACKOFF_BASE_S": "0.05",
            "AIBROKER_DISPATCHER_BACKOFF_MAX_S": "0.2",
            "AIBROKER_CONSUMER_CLAIM_LEASE_S": "3",
            "AIBROKER_CONSUMER_DRAIN_TIMEOUT_S": "10",
            "AIBROKER_INGRESS_DRAIN_TIMEOUT_S": "10",
            **(
                {"AIBROKER_ROUTES_FILE": str(self.logs / "routes.yaml")} if self.routes_yaml else {}
            ),
            "AIBROKER_PRICES_FILE": str(self.logs / "prices.yaml"),
            "AIBROKER_ADMIN_API_KEY": self.admin_key,
            # Envelopes prove their tenant, as in production (see aibroker/signing.py).
            "AIBROKER_AUTH_ENVELOPE_SECRET": self.envelope_secret,
            "AIBROKER_AUTH_REQUIRE_SIGNED_ENVELOPES": "true",
            "AIBROKER_AUTH_PRODUCER_SECRETS": json.dumps(
                {"tenant-a": self.producer_secret, "bench": self.producer_secret}
            ),
            "AIBROKER_INGRESS_KEY_CACHE_TTL_S": "0.5",
            "AIBROKER_QUOTA_CACHE_TTL_S": "0.5",
            "AIBROKER_BATCH_FILES_DIR": str(self.logs / "files"),
            "AIBROKER_EMBEDDINGS_MODELS": json.dumps(
                {EMBEDDINGS_MODEL: EMBEDDINGS_MODEL} if self.embeddings else {}
            ),
            "AIBROKER_OCR_MODELS": json.dumps({OCR_MODEL: "rapidocr"} if self.ocr else {}),
            "AIBROKER_RAG_QDRANT_URL": str(self.logs / "rag-qdrant"),
            **self.extra_env,
        }

    def start(self, services: list[str] | None = None) -> None:
        """The mock, the topics, a key for tenant-a, then the services (all by default)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.routes_yaml:
            (self.logs / "routes.yaml").write_text(self.routes_yaml)
        (self.logs / "prices.yaml").write_text(self.prices_yaml)
        self._spawn(
            "mock",
            [
                sys.executable,
                "-m",
                "loadtest.mock_provider",
                "--port",
                str(self.mock_port),
                "--latency-ms",
                str(self.mock_latency_ms),
            ],
        )
        self.create_topics()
        self.api_key = self._run(["keys", "create", "--tenant", "tenant-a"]).strip()
        for name in self.services() if services is None else services:
            self.start_service(name)
        if services is None or "ingress" in services:
            self.wait_ready()
        if self.rag and (services is None or "rag" in services):
            self.wait_rag()

    def create_topics(self) -> None:
        self._run(["topics", "apply"])

    def start_service(self, name: str, *, replica: str | None = None) -> None:
        """One of `services()`, or `forwarder` (the dispatcher benchmark's baseline). With
        `replica`, one more process of that service under that name (it joins the same
        consumer groups, as a scaled-out deployment's pods do)."""
        process = replica or name
        if process not in self.metrics_ports:
            self.metrics_ports[process] = self.ports.any_free(f"a test stack's {process} metrics")
        port = self.metrics_ports[process]
        module = (
            ["loadtest.forwarder"] if name == "forwarder" else ["aibroker", *self.services()[name]]
        )
        self._spawn(process, [sys.executable, "-m", *module], {"AIBROKER_METRICS_PORT": str(port)})

    def services(self) -> dict[str, list[str]]:
        local = {
            "embed": ["consumer", "embeddings", "--model", EMBEDDINGS_MODEL],
            "ocr": ["consumer", "ocr", "--model", OCR_MODEL],
            "rag": ["rag"],
        }
        chosen = {"embed": self.embeddings, "ocr": self.ocr, "rag": self.rag}
        return SERVICES | {name: args for name, args in local.items() if chosen[name]}

    def new_key(self, tenant: str) -> str:
        return self._run(["keys", "create", "--tenant", tenant]).strip()

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(30)

    def wait_rag(self, timeout_s: float = 180) -> None:
        """Until the RAG worker answers an operation (it has read its topics)."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.procs["rag"].poll() is not None:
                raise RuntimeError(f"the rag worker exited: {self.log_tail('rag')}")
            with contextlib.suppress(httpx.HTTPError):
                listed = httpx.get(f"{self.url}/v1/rag/collections", headers=headers, timeout=60)
                if listed.status_code == 200:
                    return
        raise RuntimeError(f"the rag worker did not answer: {self.log_tail('rag')}")

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited early: {self.log_tail(name)}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"ingress not ready: {self.log_tail('ingress')}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs.values():
            stop_process(proc, timeout_s=15)
        self.procs.clear()
        self.ports.release()

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                argv, env={**self.env(), **(env or {})}, stdout=out, stderr=subprocess.STDOUT
            )

    def _run(self, args: list[str]) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "aibroker", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout


BENCH_ENV = {"AIBROKER_CONSUMER_CONCURRENCY": "256", "AIBROKER_LOG_LEVEL": "WARNING"}
"""What every benchmark's broker runs with: pools never the limit, logs quiet."""


def bench_stack(
    ctx: contextlib.ExitStack,
    workdir: Path,
    pids: dict[str, int],
    *,
    engine: str = "tansu",
    **options: Any,
) -> Stack:
    """A started broker for a benchmark, on AIBROKER_KAFKA_BOOTSTRAP / AIBROKER_REDIS_URL when
    set, else on a Kafka it starts (`engine`: the embedded `tansu`, or `apache`: one Apache
    Kafka node from Maven's jars) and the embedded Redis (their pids go into `pids`, with the
    broker's own); stopped when `ctx` closes. `extra_env` is added to BENCH_ENV; `services`
    picks the services to start (default: all)."""
    bootstrap = os.environ.get("AIBROKER_KAFKA_BOOTSTRAP")
    if bootstrap:
        kafka = KafkaSettings(bootstrap=bootstrap)
    elif engine == "apache":
        dev = DevSettings()
        libs = apache_kafka.kafka_libs(dev.kafka_version, dev.kafka_cache)
        plan = apache_kafka.plan(libs, workdir / "kafka", 1)
        nodes = ctx.enter_context(apache_kafka.running(plan, workdir))
        kafka = KafkaSettings(bootstrap=nodes.bootstrap, engine="kafka")
        pids["kafka (apache)"] = nodes.procs[1].pid
    else:
        tansu = ctx.enter_context(embedded.tansu(workdir))
        kafka = KafkaSettings(bootstrap=tansu.url, engine="tansu")
        pids["kafka (tansu)"] = tansu.process.pid
    redis_url = os.environ.get("AIBROKER_REDIS_URL")
    if not redis_url:
        redis = ctx.enter_context(embedded.redis_server(workdir))
        redis_url, pids["redis"] = redis.url, redis.process.pid
    env = {**BENCH_ENV, **options.pop("extra_env", {})}
    services = options.pop("services", None)
    broker = Stack(kafka, redis_url, workdir / "logs", extra_env=env, **options)
    ctx.callback(broker.stop)
    broker.start(services)
    pids |= {name: proc.pid for name, proc in broker.procs.items()}
    return broker
