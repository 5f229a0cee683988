"""Prometheus metrics of every process. Labels stay bounded: worker names, providers,
statuses, endpoints — never request ids, model names a client typed, or other user input.

The metric objects live at module level on purpose: prometheus_client's registry is
process-global, and defining a metric twice is an error.
"""

from __future__ import annotations

import json
import platform
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from aibroker import installed_version
from aibroker.telemetry.liveness import HEARTBEATS

BUILD_INFO = Gauge(
    "aibroker_build_info",
    "Always 1; its labels say what runs: the aibroker version, the Python version and the "
    "service (join on it: `* on (instance) group_left(version) aibroker_build_info`).",
    ["version", "python_version", "service"],
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

ACCEPTED = Counter(
    "aibroker_requests_accepted_total", "Requests written to Kafka by ingress.", ["kind", "mode"]
)
REFUSED = Counter(
    "aibroker_requests_refused_total",
    "Requests ingress answered with an error.",
    ["status", "code"],
)
FINISHED = Counter(
    "aibroker_requests_finished_total",
    "Terminal results stored (first result per request only), by the target that served "
    "them (provider, catalogue model; `none` when no target was reached).",
    ["provider", "model", "status"],
)
STAGE_SECONDS = Histogram(
    "aibroker_request_stage_seconds",
    "Time per stage: accept (ingress's Kafka write), queue (accepted to work started), "
    "service (the provider or model call), total (accepted to result).",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter(
    "aibroker_tokens_total",
    "Tokens in finished requests, by tenant and serving model.",
    ["tenant", "provider", "model", "direction"],
)
COST = Counter(
    "aibroker_cost_usd_total",
    "What finished requests cost at the price table, by tenant and serving model.",
    ["tenant", "provider", "model"],
)
CACHE_LOOKUPS = Counter(
    "aibroker_cache_requests_total",
    "Requests by what the response cache did for them (`hit`, `miss`, `bypass`, `semantic`),"
    " by tenant and target (provider, catalogue model); counted once, where it decided: ingress"
    " for the hits it answered, the dispatcher for the rest.",
    ["tenant", "provider", "model", "outcome"],
)
CACHE_SAVED = Counter(
    "aibroker_cache_saved_usd_total",
    "What the provider calls answered from the response cache would have cost.",
    ["tenant", "provider", "model"],
)
CACHE_STORED = Counter(
    "aibroker_cache_stores_total",
    "Successful answers the pools wrote to the response cache (`stored`), or could not"
    " (`failed`: Redis down or hung).",
    ["outcome"],
)
OFFLOAD_LINES = Counter(
    "aibroker_offload_lines_total",
    "Requests the dispatcher sent to a provider's batch API (`dispatch.<provider>.batch`).",
    ["provider"],
)
OFFLOAD_BATCHES = Gauge(
    "aibroker_offload_batches_in_flight",
    "Provider batches an offload pool has created and not yet finished with.",
    ["provider"],
)
OFFLOAD_SAVED = Counter(
    "aibroker_offload_saved_usd_total",
    "What the lines answered through a provider's batch API saved against the on-demand price.",
    ["tenant", "provider", "model"],
)
WORKER_MESSAGES = Counter(
    "aibroker_worker_messages_total",
    "Kafka records handled by a worker, by outcome.",
    ["worker", "outcome"],
)
WORKER_IN_FLIGHT = Gauge(
    "aibroker_worker_in_flight", "Records a worker is handling now.", ["worker"]
)
WORKER_PAUSED = Gauge(
    "aibroker_worker_paused", "1 while a full worker pauses its partitions.", ["worker"]
)
HANDLE_SECONDS = Histogram(
    "aibroker_worker_handle_seconds",
    "Time a worker spent on one record (for the dispatcher: the dispatch stage).",
    ["worker"],
    buckets=LATENCY_BUCKETS,
)
RECORD_AGE_SECONDS = Histogram(
    "aibroker_worker_record_age_seconds",
    "Time from a record's write to a worker starting on it: the queue wait of each hop.",
    ["worker"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "aibroker_consumer_lag",
    "Records in this replica's partitions past its finished work (sum over replicas for a "
    "group's lag).",
    ["topic", "group"],
)
BREAKER_STATE = Gauge(
    "aibroker_breaker_state",
    "1 for a target's current circuit-breaker state (closed, open, half_open), else 0; as "
    "the dispatcher last read it.",
    ["target", "state"],
)
RETRIES = Counter(
    "aibroker_retries_total", "Attempts sent back through a delay topic.", ["provider"]
)
FALLBACKS = Counter(
    "aibroker_fallbacks_total", "Requests moved on to their next target.", ["provider"]
)
DELAY_HOPS = Counter(
    "aibroker_delay_hops_total",
    "Delayed records moved on to a shorter delay topic (their wait was longer than the topic's).",
    ["delay"],
)
LATE_WRITES_DROPPED = Counter(
    "aibroker_late_writes_dropped_total",
    "Requests Kafka took after ingress had answered 503 for them, dropped by the dispatcher.",
)
QUOTA_WAITS = Counter(
    "aibroker_quota_waits_total",
    "Async or batch requests held in a delay topic until they fit their quota, by limit "
    "(`unavailable`: the quota store could not be read).",
    ["limit"],
)
QUOTA_REJECTIONS = Counter(
    "aibroker_quota_rejections_total",
    "Requests refused for quota (sync over a rate limit; any over budget), by limit.",
    ["limit"],
)
BREAKERS_OPENED = Counter(
    "aibroker_breakers_opened_total", "Times a target's circuit breaker opened.", ["provider"]
)
WEBHOOK_ATTEMPTS = Counter(
    "aibroker_webhook_attempts_total",
    "Webhook delivery attempts by what followed: delivered, retryin, giveup, disable.",
    ["outcome"],
)
USAGE_EVENTS = Counter(
    "aibroker_usage_events_total",
    "Usage events the usage consumer read: `counted`, or `seen_before` (a replay, not counted).",
    ["outcome"],
)
BUDGET_USED = Gauge(
    "aibroker_budget_used_ratio",
    "A tenant's spend this month over its monthly budget (set as results are settled).",
    ["tenant"],
)
AUTH_REFUSED = Counter(
    "aibroker_auth_refused_total",
    "Refused authentications by reason (each is in the audit log, by key prefix or subject).",
    ["reason"],
)
POOL_CANCELLED = Counter(
    "aibroker_pool_cancelled_total",
    "Requests a pool ended as cancelled by their client: `running` (its engine call aborted) "
    "or `queued` (found cancelled when claimed, never started).",
    ["when"],
)
REDIS_BREAKER_OPEN = Gauge(
    "aibroker_redis_breaker_open",
    "1 while this process treats Redis as down (its calls fail at once), else 0.",
)
REDIS_BREAKER_OPENED = Counter(
    "aibroker_redis_breaker_opened_total",
    "Times this process began treating Redis as down (calls timed out or were refused).",
)
REDIS_FAST_FAILS = Counter(
    "aibroker_redis_fast_fails_total",
    "Redis calls failed at once, without waiting, while Redis was treated as down.",
)
DEAD_LETTERS = Counter("aibroker_dead_letters_total", "Records written to the DLQ.", ["reason"])
GUARD_FINDINGS = Counter(
    "aibroker_guard_findings_total",
    "Values a guardrail found in requests (by guard, the action its policy took, and tenant; "
    "where: ingress, or the dispatcher for a direct producer's request).",
    ["guard", "action", "tenant"],
)
GUARD_UNAVAILABLE = Counter(
    "aibroker_guard_unavailable_total",
    "Requests a guard's pool could not check in time, by guard, the policy's action and what "
    "followed: failed_open (log: went on) or failed_closed (block: held or refused).",
    ["guard", "action", "outcome"],
)

BATCH_ITEMS = Histogram(
    "aibroker_batch_items",
    "Items (texts, images) in one local model call.",
    ["pool"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
BATCH_FILL = Histogram(
    "aibroker_batch_fill_ratio",
    "Share of the batch limit (items or cost, whichever is fuller) one model call used.",
    ["pool"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0),
)
BATCH_WAIT_SECONDS = Histogram(
    "aibroker_batch_queue_wait_seconds",
    "Time an item waited in the micro-batcher before its model call started.",
    ["pool"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
MODEL_CALL_SECONDS = Histogram(
    "aibroker_model_call_seconds",
    "Duration of one local model call (one batch).",
    ["pool"],
    buckets=LATENCY_BUCKETS,
)


def build_info(service: str) -> None:
    """Set `aibroker_build_info` for this process, once at its start."""
    BUILD_INFO.labels(installed_version(), platform.python_version(), service).set(1)


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Expose this process's metrics on http://host:port/metrics (0: do not), and its
    liveness on /health/live: 503 naming the poll loops that stopped turning."""
    if not port:
        return
    server = ThreadingHTTPServer((host, port), _MetricsHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()


class _MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/health/live":
            silent = HEARTBEATS.silent()
            body = json.dumps({"status": "wedged" if silent else "ok", "silent": silent})
            self._answer(503 if silent else 200, body.encode(), "application/json")
        else:
            self._answer(200, generate_latest(), CONTENT_TYPE_LATEST)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Probes and scrapes are not worth a log line each."""
