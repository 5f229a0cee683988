"""The settings of the embedded dev stack (`aibroker dev`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from aibroker.settings.base import SettingsGroup


class DevSettings(SettingsGroup):
    api_key: str | None = None
    """API key of the `dev` tenant that `aibroker dev` creates. Unset: a random `aib_` key."""
    data_dir: Path = Path(".aibroker")
    """Where `aibroker dev` writes its logs and the dev Apache Kafka keeps its data."""
    mock_provider: bool = True
    """`aibroker dev` also runs the project's mock provider as provider `mock`."""
    mock_port: int = 8090
    """Port of that mock provider. Unset: the first free one from 8090 (each stack on the
    machine gets its own); set: that port, or `aibroker dev` refuses to start."""
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
