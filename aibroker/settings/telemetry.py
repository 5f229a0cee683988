"""The settings of metrics and traces."""

from __future__ import annotations

from pydantic import Field

from aibroker.settings.base import SettingsGroup


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
