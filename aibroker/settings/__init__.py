"""The one settings object: read from `AIBROKER_*` variables once per process, then passed in.

Every variable is `AIBROKER_<GROUP>_<FIELD>` (e.g. `AIBROKER_KAFKA_BOOTSTRAP`); each field's
docstring is its documentation, and the settings reference (`docs/reference/settings.md`)
lists them all. The groups live in the modules of this package, one concern each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from aibroker.settings.auth import AdminSettings, AuthSettings, JwtIssuer
from aibroker.settings.base import SettingsGroup
from aibroker.settings.cache import CacheSettings
from aibroker.settings.dev import DevSettings
from aibroker.settings.kafka import ENGINE_DEFAULTS, EngineDefaults, KafkaEngine, KafkaSettings
from aibroker.settings.local import EmbeddingsSettings, OcrSettings, VllmSettings
from aibroker.settings.offload import OffloadPolicy, OffloadSettings
from aibroker.settings.providers import (
    AnthropicSettings,
    GeminiSettings,
    OpenAISettings,
    ProviderSettings,
)
from aibroker.settings.rag import RagSettings
from aibroker.settings.redis import RedisSettings
from aibroker.settings.responses import ResponsesSettings
from aibroker.settings.services import (
    BatchSettings,
    BreakerSettings,
    ConsumerSettings,
    DispatcherSettings,
    IngressSettings,
    QuotaSettings,
    WebhookSettings,
)
from aibroker.settings.telemetry import MetricsSettings, OtelSettings

__all__ = [
    "ENGINE_DEFAULTS",
    "AdminSettings",
    "AnthropicSettings",
    "AuthSettings",
    "BatchSettings",
    "BreakerSettings",
    "CacheSettings",
    "ConsumerSettings",
    "DevSettings",
    "DispatcherSettings",
    "EmbeddingsSettings",
    "EngineDefaults",
    "GeminiSettings",
    "IngressSettings",
    "JwtIssuer",
    "KafkaEngine",
    "KafkaSettings",
    "MetricsSettings",
    "OcrSettings",
    "OffloadPolicy",
    "OffloadSettings",
    "OpenAISettings",
    "OtelSettings",
    "ProviderSettings",
    "QuotaSettings",
    "RagSettings",
    "RedisSettings",
    "ResponsesSettings",
    "Settings",
    "SettingsGroup",
    "VllmSettings",
    "WebhookSettings",
    "child_environment",
    "group_environment",
    "load_settings",
]


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
    cache: CacheSettings = Field(default_factory=CacheSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    offload: OffloadSettings = Field(default_factory=OffloadSettings)
    responses: ResponsesSettings = Field(default_factory=ResponsesSettings)
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
    rag: RagSettings = Field(default_factory=RagSettings)

    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    """More provider deployments as JSON: `{"name": {"base_url", "api_key", "kind", "client"}}`,
    `kind` `openai` (default; any OpenAI-compatible server), `anthropic` or `gemini`. Several
    deployments of one provider are several names (two OpenAI keys, OpenAI and Azure)."""
    prices_file: Path | None = None
    """YAML price table (USD per million tokens, see docs/guides/prices.md): its models' prices
    win over the `genai-prices` data the broker ships with."""
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
