"""Create the catalogue's missing topics and, on Apache Kafka, bring existing topics' configs in
line with it (retention, compaction, `max.message.bytes`, `min.insync.replicas`)."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from aibroker.kafka.clients import make_admin
from aibroker.settings import KafkaSettings
from topics.catalog import TopicSpec

log = logging.getLogger(__name__)


def durability_configs(replication_factor: int) -> dict[str, str]:
    """With three replicas or more, a write is acknowledged once two have it: one broker may be
    down and no acknowledged record is lost. Fewer replicas cannot promise that."""
    return {"min.insync.replicas": str(2 if replication_factor >= 3 else 1)}


def wanted_configs(spec: TopicSpec, replication_factor: int) -> dict[str, str]:
    return {**spec.kafka_configs(), **durability_configs(replication_factor)}


async def apply_topics(settings: KafkaSettings, specs: list[TopicSpec]) -> list[str]:
    """Idempotent: returns the names it created. Tansu keeps what exists as it is (it does not
    answer config changes the way Kafka does)."""
    rf = settings.replication_factor
    admin = make_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(s.name, s.partitions, rf, topic_configs=wanted_configs(s, rf))
                    for s in missing
                ]
            )
        for spec in missing:
            log.info("created topic %s (%d partitions)", spec.name, spec.partitions)
        present = [s for s in specs if s.name in existing]
        if present and settings.engine == "kafka":
            await _align(admin, present, rf)
        return [s.name for s in missing]
    finally:
        await admin.close()


async def topic_configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """Each topic's configs as the brokers report them; a topic they cannot describe yet (just
    created, its metadata still spreading) is left out."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    found: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for error_code, _, _, name, entries in response.resources:
            if error_code == 0:
                found[name] = {entry[0]: entry[1] for entry in entries}
    return found


async def _align(admin: AIOKafkaAdminClient, specs: list[TopicSpec], rf: int) -> None:
    """Alter the topics whose managed configs differ from the catalogue's."""
    current = await topic_configs(admin, [s.name for s in specs])
    changes = []
    for spec in specs:
        wanted = wanted_configs(spec, rf)
        have = current.get(spec.name)
        if have is None:
            continue  # created a moment ago (by another replica): it has the configs
        if any(have.get(k) != v for k, v in wanted.items()):
            changes.append(ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=wanted))
            log.info("updating the configs of topic %s", spec.name)
    if changes:
        await admin.alter_configs(changes)


async def delete_topics(settings: KafkaSettings, names: list[str]) -> None:
    admin = make_admin(settings)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()
