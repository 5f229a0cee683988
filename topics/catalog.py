"""Every topic the broker uses, as code. Names carry the configured prefix (default `aib.`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}
"""The requests lanes carry the broker's append time: a write that landed after ingress gave up
on it is told apart (`aibroker/kafka/acceptance.py`)."""
RETRY_DELAYS = ("1s", "10s", "60s", "10m")
"""The delay topics, shortest first; a retry goes to the longest one not exceeding its delay."""
DELAY_SECONDS = {"1s": 1.0, "10s": 10.0, "60s": 60.0, "10m": 600.0}
"""Each delay topic's delay: a record in it is read that long after it was written."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    key: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    compacted: bool = False
    configs: dict[str, str] = field(default_factory=dict)

    def kafka_configs(self) -> dict[str, str]:
        cleanup = "compact" if self.compacted else "delete"
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": cleanup, **self.configs}


@dataclass(frozen=True)
class TopicNames:
    """Topic names under one prefix; the single place a name is spelled."""

    prefix: str = "aib."

    @property
    def requests_interactive(self) -> str:
        return f"{self.prefix}requests.interactive"

    @property
    def requests_batch(self) -> str:
        return f"{self.prefix}requests.batch"

    def lane(self, priority: str) -> str:
        """The requests lane a request of this priority (`interactive`, `batch`) is written to."""
        return self.requests_batch if priority == "batch" else self.requests_interactive

    def dispatch(self, provider: str) -> str:
        return f"{self.prefix}dispatch.{provider}"

    def dispatch_batch(self, provider: str) -> str:
        """The lines the dispatcher hands to a provider's batch API (its offload pool's)."""
        return f"{self.prefix}dispatch.{provider}.batch"

    def dispatch_local(self, engine: str, model: str) -> str:
        """A local model's own topic: `dispatch.<engine>.<served name>`, lower-cased."""
        return f"{self.prefix}dispatch.{engine}.{model.lower()}"

    @property
    def outcomes(self) -> str:
        return f"{self.prefix}outcomes"

    def retry(self, delay: str) -> str:
        return f"{self.prefix}retry.{delay}"

    @property
    def results(self) -> str:
        return f"{self.prefix}results"

    def replies(self, instance: str) -> str:
        return f"{self.prefix}replies.{instance}"

    @property
    def usage(self) -> str:
        return f"{self.prefix}usage"

    @property
    def batches(self) -> str:
        return f"{self.prefix}batches"

    @property
    def webhooks(self) -> str:
        return f"{self.prefix}webhooks"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}dlq"

    @property
    def audit(self) -> str:
        return f"{self.prefix}audit"

    @property
    def config(self) -> str:
        return f"{self.prefix}config"

    @property
    def offload(self) -> str:
        """The offload pools' provider batches and their lines (compacted)."""
        return f"{self.prefix}offload"

    @property
    def rag_jobs(self) -> str:
        return f"{self.prefix}rag.jobs"

    @property
    def rag_collections(self) -> str:
        return f"{self.prefix}rag.collections"


AUDIT_RETENTION_MS = 400 * DAY_MS
"""The audit log is kept 13 months, past a yearly review."""
FOREVER = -1
"""`retention.ms` of a topic whose records are never deleted for their age."""


def catalogue(
    names: TopicNames,
    dispatch_topics: list[str],
    *,
    partitions: int,
    max_message_bytes: int | None = None,
    offload_topics: Sequence[str] = (),
) -> list[TopicSpec]:
    """The shared topics, with these dispatch topics (one per external provider, one per
    local model; `RouteTable.dispatch_topics`) and offload topics (one per provider with a
    batch API; `aibroker.rules.offload.offload_topics`). Reply topics are per ingress."""
    work = partitions
    specs = [
        TopicSpec(
            names.requests_interactive,
            work,
            7 * DAY_MS,
            "request id",
            ("ingress", "direct producers"),
            ("dispatcher",),
            configs=APPEND_TIME,
        ),
        TopicSpec(
            names.requests_batch,
            work,
            7 * DAY_MS,
            "request id",
            ("ingress", "batch expander"),
            ("dispatcher",),
            configs=APPEND_TIME,
        ),
        TopicSpec(names.outcomes, work, 7 * DAY_MS, "request id", ("consumers",), ("dispatcher",)),
        TopicSpec(
            names.results,
            work,
            7 * DAY_MS,
            "request id",
            ("consumers", "dispatcher"),
            ("results sink",),
        ),
        TopicSpec(names.usage, work, 30 * DAY_MS, "tenant", ("results sink",), ("billing",)),
        TopicSpec(names.batches, work, 7 * DAY_MS, "batch id", ("ingress",), ("batch runner",)),
        TopicSpec(
            names.webhooks,
            work,
            7 * DAY_MS,
            "request id",
            ("webhook deliverer (retries)", "admin (redelivery)"),
            ("webhook deliverer",),
        ),
        TopicSpec(names.dlq, 1, 30 * DAY_MS, "request id", ("any",), ("operators",)),
        TopicSpec(
            names.audit,
            1,
            AUDIT_RETENTION_MS,
            "tenant",
            ("ingress (admin changes, refused auth)", "dispatcher (unproven producers)"),
            ("GET /admin/v1/audit", "compliance exports"),
        ),
        config_topic_spec(names),
        offload_topic_spec(names),
        TopicSpec(names.rag_jobs, work, 7 * DAY_MS, "collection id", ("ingress",), ("rag worker",)),
        TopicSpec(
            names.rag_collections,
            1,
            FOREVER,
            "object (collection:<id>, file:<collection id>:<file id>)",
            ("rag worker",),
            ("rag worker",),
            compacted=True,
        ),
    ]
    specs += [
        TopicSpec(
            topic,
            work,
            7 * DAY_MS,
            "request id",
            ("dispatcher",),
            (f"consumer pool of {topic.removeprefix(names.dispatch(''))}",),
        )
        for topic in dispatch_topics
    ]
    specs += [
        TopicSpec(
            topic,
            work,
            7 * DAY_MS,
            "request id",
            ("dispatcher",),
            (f"offload pool of {topic.removeprefix(names.dispatch('')).removesuffix('.batch')}",),
        )
        for topic in offload_topics
    ]
    specs += [
        TopicSpec(
            names.retry(d),
            work,
            7 * DAY_MS,
            "request id",
            ("dispatcher",),
            (f"dispatcher delay loop of {d}",),
        )
        for d in RETRY_DELAYS
    ]
    return [_sized(s, max_message_bytes) for s in specs]


def _sized(spec: TopicSpec, max_message_bytes: int | None) -> TopicSpec:
    """Records may be as large as the producers allow (an OCR image, 2048 embeddings)."""
    if max_message_bytes is None:
        return spec
    return replace(spec, configs={**spec.configs, "max.message.bytes": str(max_message_bytes)})


def config_topic_spec(names: TopicNames) -> TopicSpec:
    """What the control plane is (the audit log says who changed it): compacted, kept for ever,
    one partition, so that one offset says how far a view has applied it."""
    return TopicSpec(
        names.config,
        1,
        FOREVER,
        "object (tenant:<name>, key:<id>, revoked:<id>)",
        ("ingress (admin changes, the tenants file)", "aibroker keys create"),
        ("the Redis view (every ingress, the results sink)",),
        compacted=True,
    )


def offload_topic_spec(names: TopicNames) -> TopicSpec:
    """The offload pools' durable state (`consumers/offload/journal.py`): compacted, kept for
    ever, one partition, so a batch's lines are read back before the batch that holds them."""
    return TopicSpec(
        names.offload,
        1,
        FOREVER,
        "batch:<id>, line:<batch id>:<request id>",
        ("offload pools",),
        ("offload pools (their Redis view, rebuilt when lost)",),
        compacted=True,
    )


def reply_topic_spec(
    names: TopicNames, instance: str, *, max_message_bytes: int | None = None
) -> TopicSpec:
    """One ingress instance's reply topic: sync results, short retention."""
    spec = TopicSpec(
        names.replies(instance),
        1,
        HOUR_MS,
        "request id",
        ("consumers", "dispatcher"),
        (f"ingress {instance}",),
    )
    return _sized(spec, max_message_bytes)


def delay_topic(delay_s: float) -> str:
    """The longest delay topic not longer than the delay (the shortest for tiny delays)."""
    fitting = [d for d in RETRY_DELAYS if DELAY_SECONDS[d] <= delay_s]
    return fitting[-1] if fitting else RETRY_DELAYS[0]
