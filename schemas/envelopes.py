"""The Kafka envelopes (version 1): Request, Result, Outcome. JSON on the wire, keyed by id.

Trace context travels in Kafka headers, never in these bodies.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.openai import ErrorObject, Usage


class Kind(StrEnum):
    """What a request asks for; decides which endpoint body it carries."""

    CHAT = "chat"
    """`/v1/chat/completions`."""
    EMBEDDINGS = "embeddings"
    """`/v1/embeddings`."""
    OCR = "ocr"
    """`/v1/ocr` (broker-native)."""
    RESPONSES = "responses"
    """`/v1/responses` (OpenAI's Responses API; translated to chat where a target has none)."""
    MODERATIONS = "moderations"
    """`/v1/moderations` (OpenAI's; served by OpenAI-compatible providers)."""

    @property
    def endpoint(self) -> str:
        return _ENDPOINTS[self]


_ENDPOINTS = {
    Kind.CHAT: "/v1/chat/completions",
    Kind.EMBEDDINGS: "/v1/embeddings",
    Kind.OCR: "/v1/ocr",
    Kind.RESPONSES: "/v1/responses",
    Kind.MODERATIONS: "/v1/moderations",
}


class Mode(StrEnum):
    """How the client waits for the result."""

    SYNC = "sync"
    """The HTTP call waits; the result comes back on the ingress's reply topic."""
    ASYNC = "async"
    """202 + id; the client long-polls or gets a webhook."""
    BATCH = "batch"
    """A line of a batch job."""


class Status(StrEnum):
    """Lifecycle of a request; the last four are terminal."""

    QUEUED = "queued"
    """Accepted and written to Kafka."""
    RUNNING = "running"
    """A consumer has claimed it and is calling the engine."""
    SUCCEEDED = "succeeded"
    """Terminal: `response` holds the answer."""
    FAILED = "failed"
    """Terminal: `error` says why."""
    CANCELLED = "cancelled"
    """Terminal: the client cancelled it."""
    EXPIRED = "expired"
    """Terminal: its deadline passed before it could run."""

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.EXPIRED})


class WebhookEvent(StrEnum):
    """What a webhook announces."""

    REQUEST_COMPLETED = "request.completed"
    """The request succeeded."""
    REQUEST_FAILED = "request.failed"
    """The request ended with an error."""
    REQUEST_CANCELLED = "request.cancelled"
    """The client cancelled it."""
    REQUEST_EXPIRED = "request.expired"
    """Its deadline passed before it could run."""
    BATCH_COMPLETED = "batch.completed"
    """A batch job ran every line (some may have failed: see its error file)."""
    BATCH_FAILED = "batch.failed"
    """A batch job's input was refused."""
    BUDGET_THRESHOLD = "budget.threshold"
    """The tenant's spend this month crossed a share (50, 80, 100 %) of its budget."""
    BATCH_EXPIRED = "batch.expired"
    """A batch job's completion window ended first."""
    BATCH_CANCELLED = "batch.cancelled"
    """A batch job was cancelled."""


REQUEST_EVENTS = [e for e in WebhookEvent if e.value.startswith("request.")]


class Webhook(BaseModel):
    """Where a request's end is announced (Standard Webhooks, signed with the tenant's secret)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048)
    events: list[WebhookEvent] = Field(default_factory=lambda: list(REQUEST_EVENTS))


class CacheDirective(StrEnum):
    """What the client asked of the response cache (its `Cache-Control`)."""

    DEFAULT = "default"
    """Looked up and stored when the policy allows it (deterministic requests)."""
    NO_CACHE = "no-cache"
    """Never served from the cache, but the answer is stored."""
    NO_STORE = "no-store"
    """Neither served from the cache nor stored."""
    ALLOW = "allow"
    """Cached even if not deterministic (`x-aibroker-cache: allow`)."""


class CacheMark(StrEnum):
    """How the response cache took part in an answer (`x-aibroker-cache`)."""

    HIT = "hit"
    """Served from the cache: no provider was called."""
    MISS = "miss"
    """Looked up, not there: a provider answered (and the answer was stored)."""
    BYPASS = "bypass"
    """Not looked up (policy, `Cache-Control`, or the cache is off)."""
    SEMANTIC = "semantic"
    """Served the cached answer of an earlier request whose last user turn is near enough by
    embedding (the semantic cache; the score says how near): no provider was called."""

    @property
    def served(self) -> bool:
        """Answered from the cache (exact or semantic): no provider call, no tokens charged."""
        return self in (CacheMark.HIT, CacheMark.SEMANTIC)


class CacheEntry(BaseModel):
    """Where a pool stores the request's answer when it succeeds (set by the dispatcher)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    ttl_s: int = Field(ge=1)
    lock: str | None = Field(default=None, description="The single-flight lock it holds.")


class Target(BaseModel):
    """Where the dispatcher sent a request: a provider and the model name it knows."""

    provider: str
    model: str


class Request(BaseModel):
    """A unit of work, as written by ingress (or a direct producer) to a requests lane."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    id: str
    tenant: str
    key_id: str | None = None
    user: str | None = Field(default=None, description="The end user a JWT caller named.")
    kind: Kind
    model: str = Field(description="The alias the client asked for.")
    body: dict[str, Any] = Field(description="The validated OpenAI-compatible request body.")
    mode: Mode = Mode.ASYNC
    reply_to: str | None = Field(default=None, description="Topic for the sync fast path.")
    priority: Literal["interactive", "batch"] = "interactive"
    deadline: float | None = Field(default=None, description="Unix time after which it expires.")
    idempotency_key: str | None = None
    webhook: Webhook | None = None
    batch_id: str | None = Field(default=None, description="The batch job it is a line of.")
    custom_id: str | None = Field(default=None, description="Its line's `custom_id`.")
    attempt: int = Field(default=1, ge=1, description="Attempts so far, all targets counted.")
    target_attempt: int = Field(default=1, ge=1, description="Attempts on the current target.")
    tried: list[Target] = Field(default_factory=list, description="Targets given up on.")
    target: Target | None = None
    probe: bool = Field(
        default=False, description="Sent as the probe of its target's half-open breaker."
    )
    replay_of: str | None = Field(
        default=None, description="The failed request this one replays (from the DLQ)."
    )
    created_at: float
    cache: CacheDirective = Field(
        default=CacheDirective.DEFAULT, description="The client's response-cache directive."
    )
    cache_mark: CacheMark | None = Field(
        default=None, description="Set by the dispatcher: `miss` or `bypass`, for its result."
    )
    cache_entry: CacheEntry | None = Field(
        default=None, description="Set by the dispatcher: where a success is stored."
    )
    cache_score: float | None = Field(
        default=None, description="Set by the dispatcher on a semantic hit: the similarity."
    )
    internal: Literal[True] | None = Field(
        default=None,
        description="Made by the broker for itself (the semantic cache's embeddings): its "
        "result is announced to no webhook. Absent on every other request.",
    )
    guarded: Literal[True] | None = Field(
        default=None,
        description="Set by ingress (or the dispatcher) once the tenant's input guardrails "
        "ran on the body; a request without it (a direct producer's) is guarded by the "
        "dispatcher before it is routed.",
    )


class ErrorInfo(ErrorObject):
    """An OpenAI error object plus what the broker knows about retrying it."""

    retryable: bool = False
    provider_status: int | None = None
    http_status: int = 500
    retry_after: float | None = Field(
        default=None, description="Seconds after which trying again may succeed."
    )


class Result(BaseModel):
    """The terminal state of a request, exactly as the client will see it."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    id: str
    tenant: str
    status: Status
    response: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    usage: Usage | None = None
    cost_usd: Decimal | None = Field(default=None, description="What the call cost, exactly.")
    served_by: Target | None = None
    attempts: int = 1
    queued_ms: float | None = None
    service_ms: float | None = None
    total_ms: float | None = None
    finished_at: float
    webhook: Webhook | None = Field(
        default=None, description="The request's webhook, for the deliverer; never shown."
    )
    batch_id: str | None = None
    custom_id: str | None = None
    cache: CacheMark | None = Field(default=None, description="`x-aibroker-cache` of the answer.")
    cache_score: float | None = Field(
        default=None, description="`x-aibroker-cache-score`: a semantic hit's similarity."
    )
    internal: Literal[True] | None = Field(
        default=None, description="The request's `internal`: announced to no webhook."
    )
    provider_batch: str | None = Field(
        default=None,
        description="The provider batch (its id at the provider) that answered it: an "
        "offloaded line, billed at the batch price.",
    )


class Outcome(BaseModel):
    """A consumer's failure report to the dispatcher, which decides what happens next."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    request: Request
    error: ErrorInfo
    retry_after: float | None = None


class Chunk(BaseModel):
    """One streamed piece of a sync request's answer, on the caller's reply topic: `data` is
    an OpenAI `chat.completion.chunk`. The request's Result follows the last one."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    id: str
    seq: int = Field(ge=0)
    data: dict[str, Any]
    cache: CacheMark | None = Field(default=None, description="`x-aibroker-cache` of the answer.")
    cache_score: float | None = Field(
        default=None, description="`x-aibroker-cache-score`: a semantic hit's similarity."
    )


class UsageEvent(BaseModel):
    """One provider call, on the `usage` topic (keyed by tenant): answered (`ok`, billed) or
    failed (`error`, with no tokens). A request retried or duplicated after a crash is billed
    by the provider each time, so each call is here; bill tenants once per `request_id`."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    id: str | None = Field(default=None, description="This event's id: counted once by it.")
    status: Literal["ok", "error"] = "ok"
    error_code: str | None = None
    request_id: str
    tenant: str
    key_id: str | None = None
    user: str | None = None
    model: str
    provider: str
    upstream_model: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: Decimal | None = Field(default=None, description="None: the model has no price.")
    latency_ms: float
    at: float
    cached: bool = Field(default=False, description="Served from the response cache.")
    saved_usd: Decimal | None = Field(
        default=None, description="A cached answer: what the provider call would have cost."
    )
    provider_batch: str | None = Field(
        default=None,
        description="The provider batch (its id at the provider) that answered this call: an "
        "offloaded line, billed at the batch price.",
    )


class Delivery(BaseModel):
    """One webhook message on its way (the `webhooks` topic, keyed by request or batch id):
    the same `id` (`webhook-id`) and payload on every attempt."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    id: str
    request_id: str = Field(description="The request's id, or the batch's for batch events.")
    tenant: str
    url: str
    event: WebhookEvent
    payload: dict[str, Any]
    attempt: int = Field(default=1, ge=1)
    endpoint: bool = Field(
        default=False, description="A tenant's registered endpoint (410 disables it)."
    )
    created_at: float
