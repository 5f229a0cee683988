"""The Kafka settings group (`AIBROKER_KAFKA_*`): where the brokers are, what kind they are (the
defaults that follow from it), how every client connects and how topics are made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aibroker.settings.base import SettingsGroup

KafkaEngine = Literal["kafka", "tansu"]


@dataclass(frozen=True)
class EngineDefaults:
    """What a setting left unset means on each kind of broker."""

    idempotent: bool
    fetch_max_wait_ms: int
    idle_fetch_max_wait_ms: int


ENGINE_DEFAULTS: dict[str, EngineDefaults] = {
    # Apache Kafka answers a fetch as soon as data arrives, so a long wait costs no latency and
    # keeps an idle consumer from polling (its own default is 500 ms).
    "kafka": EngineDefaults(idempotent=True, fetch_max_wait_ms=500, idle_fetch_max_wait_ms=500),
    # Tansu refuses InitProducerId and often holds a fetch for its whole wait (measured: 10 ms
    # -> ~3.5 ms a hop, 500 ms -> 77-242 ms), so its waits stay short.
    "tansu": EngineDefaults(idempotent=False, fetch_max_wait_ms=10, idle_fetch_max_wait_ms=250),
}


class KafkaSettings(SettingsGroup):
    bootstrap: str | None = None
    """Kafka bootstrap servers (`host:port,...`). Unset: `aibroker dev` starts its own broker
    (see `AIBROKER_DEV_KAFKA`)."""
    engine: KafkaEngine = "kafka"
    """The kind of broker: `kafka` (Apache Kafka and the services built on it: MSK, Confluent
    Cloud, Strimzi) or `tansu` (the embedded development broker: no idempotent producer, short
    fetch waits, lag read from a consumer's committed offsets because its admin offset fetch
    fails). `aibroker dev` sets it for the broker it starts."""
    topic_prefix: str = "aib."
    """Prefix of every topic name."""
    idempotent: bool | None = None
    """Idempotent producer (a retried send is written once); acks=all always. Unset: on for
    `kafka`, off for `tansu` (which refuses it)."""
    linger_ms: int = 0
    """Producer linger. 0: a lone request is sent at once (1 ms costs ~1.2 ms a hop on Tansu);
    under load aiokafka still batches what queues up while a send is in flight."""
    fetch_max_wait_ms: int | None = None
    """Longest a fetch waits when there is no data, for the latency-critical consumers. Unset:
    500 on `kafka` (it answers as soon as data arrives), 10 on `tansu` (it often holds a fetch
    for the whole wait)."""
    idle_fetch_max_wait_ms: int | None = None
    """The same for consumers of rarely busy topics or off callers' paths (outcomes, delay
    topics, usage, webhook retries, the batch runner). Unset: 500 on `kafka`, 250 on
    `tansu`."""
    request_timeout_ms: int = 5000
    """Deadline for one Kafka request; a produce past it fails and ingress answers 503."""
    session_timeout_ms: int = 10000
    """Consumer-group session timeout: how soon a dead member's partitions move on."""
    heartbeat_interval_ms: int = 2000
    """Consumer-group heartbeat interval (a third of the session timeout or less)."""
    max_poll_interval_ms: int = 300000
    """Longest gap between polls before the group evicts a member."""
    max_message_bytes: int = 16 * 1024 * 1024
    """Largest record: the producers' request size, the consumers' fetch size per partition
    and every topic's `max.message.bytes` (an OCR image or 2048 embeddings must fit). A
    result larger than this ends its request with a 413 error instead."""
    partitions: int = 6
    """Partitions of the work topics created by `aibroker topics apply`."""
    replication_factor: int = 1
    """Replication factor of created topics: 3 on a production cluster, 1 on a single broker.
    Topics get `min.insync.replicas` 2 when it is 3 or more (one replica may be down and no
    acknowledged write is lost), else 1."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """How every client (services, `topics apply`, the lag reader) talks to the brokers:
    `SASL_SSL` for MSK, Confluent Cloud and Strimzi's SCRAM listeners, `SSL` for mutual TLS."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    """SASL mechanism, with `SASL_*` protocols."""
    sasl_username: str | None = None
    """SASL user name."""
    sasl_password: str | None = None
    """SASL password."""
    ssl_cafile: Path | None = None
    """PEM file of the CA that signed the brokers' certificates. Unset: the system's CAs."""
    ssl_certfile: Path | None = None
    """PEM client certificate, for brokers that ask for one (mutual TLS)."""
    ssl_keyfile: Path | None = None
    """PEM private key of that client certificate."""
    ssl_check_hostname: bool = True
    """Check that a broker's certificate names the host connected to."""

    @property
    def defaults(self) -> EngineDefaults:
        return ENGINE_DEFAULTS[self.engine]

    @property
    def producer_idempotent(self) -> bool:
        return self.defaults.idempotent if self.idempotent is None else self.idempotent

    def fetch_wait_ms(self, *, idle: bool = False) -> int:
        """The fetch wait of a consumer: set, or the engine's default."""
        if idle:
            wait = self.idle_fetch_max_wait_ms
            return self.defaults.idle_fetch_max_wait_ms if wait is None else wait
        wait = self.fetch_max_wait_ms
        return self.defaults.fetch_max_wait_ms if wait is None else wait
