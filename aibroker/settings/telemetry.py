"""The settings of metrics and traces.

Traces also honour OpenTelemetry's own variables, as an operator who knows OpenTelemetry
expects; an `AIBROKER_OTEL_*` variable, where set, wins over its standard counterpart. The
standard ones are read here (the OTLP exporter and `Resource.create` read their own share,
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, themselves).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aibroker.settings.base import SettingsGroup

GEN_AI_LATEST = "gen_ai_latest_experimental"
"""The `OTEL_SEMCONV_STABILITY_OPT_IN` value that asks for the latest gen_ai conventions."""


class MetricsSettings(SettingsGroup):
    port: int = 0
    """Port of this process's Prometheus `/metrics` and workers' `/health/live` (0: off); never
    the public port. `aibroker dev` gives each child its own port from 9100."""
    host: str = "127.0.0.1"
    """Address the metrics port binds."""


class StandardOtel(BaseSettings):
    """OpenTelemetry's own variables that decide what aibroker records (no prefix)."""

    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True)

    traces_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    base_endpoint: str | None = Field(default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    semconv_opt_in: str | None = Field(
        default=None, validation_alias="OTEL_SEMCONV_STABILITY_OPT_IN"
    )

    def endpoint(self) -> str | None:
        """The traces URL the standard variables name: the per-signal one as it stands, else
        the base one with `v1/traces` appended (as the OTLP exporter specification says)."""
        if self.traces_endpoint:
            return self.traces_endpoint
        if self.base_endpoint:
            return self.base_endpoint.rstrip("/") + "/v1/traces"
        return None


class OtelSettings(SettingsGroup):
    endpoint: str | None = None
    """OTLP/HTTP traces endpoint (`http://otel-collector:4318/v1/traces`). Unset:
    `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`;
    none of them: no traces are recorded or exported (the tracer is a no-op). Headers
    (`OTEL_EXPORTER_OTLP_HEADERS`), the service name (`OTEL_SERVICE_NAME`, else
    `aibroker-<command>`) and `OTEL_RESOURCE_ATTRIBUTES` come from the standard variables."""
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """Share of new traces recorded; a request's later hops follow its ingress decision."""
    semconv_opt_in: str = ""
    """Comma-separated OpenTelemetry convention versions to emit (unset:
    `OTEL_SEMCONV_STABILITY_OPT_IN`). `gen_ai_latest_experimental`: provider and model calls
    get the latest gen_ai span conventions (`chat gpt-4o`, `gen_ai.*` attributes, still of
    Development status) instead of the older `call <provider>/<model>` span."""

    @model_validator(mode="before")
    @classmethod
    def _standard_fallbacks(cls, data: Any) -> Any:
        """Fill what no `AIBROKER_OTEL_*` variable set from the standard variables."""
        if not isinstance(data, dict):
            return data
        standard = StandardOtel()
        filled = dict(data)
        if filled.get("endpoint") is None and (endpoint := standard.endpoint()):
            filled["endpoint"] = endpoint
        if filled.get("semconv_opt_in") is None and standard.semconv_opt_in:
            filled["semconv_opt_in"] = standard.semconv_opt_in
        return filled

    @property
    def gen_ai_latest(self) -> bool:
        """True when the latest (experimental) gen_ai conventions are asked for."""
        return GEN_AI_LATEST in {v.strip() for v in self.semconv_opt_in.split(",")}
