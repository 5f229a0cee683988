"""The settings groups of the services: ingress, dispatcher, consumer pools, quota, breaker,
webhooks, batches."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from aibroker.settings.base import SettingsGroup


class IngressSettings(SettingsGroup):
    host: str = "127.0.0.1"
    """Address the HTTP ingress binds."""
    port: int = 8080
    """Port the HTTP ingress binds. Unset, `aibroker dev` takes the first free one from 8080
    (each stack on the machine gets its own); set, that port, or it refuses to start."""
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
    drain_timeout_s: float = 30.0
    """On SIGTERM, how long open requests (sync waits, streams, long-polls) may take to finish
    before the ingress closes their connections."""


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
    guard_window_chars: int = Field(default=64, ge=1)
    """A stream under an output guardrail holds back this many characters of each choice's
    text, so a value split across chunks is seen whole before any of it is released (about 16
    tokens; time to first token grows by the time the model takes to write them)."""


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
