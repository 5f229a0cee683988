"""Create the catalogue's topics that are missing; existing topics are left as they are."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from topics.catalog import TopicSpec

log = logging.getLogger(__name__)


async def apply_topics(
    bootstrap: str, specs: list[TopicSpec], *, replication_factor: int = 1
) -> list[str]:
    """Idempotent: returns the names it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        s.name, s.partitions, replication_factor, topic_configs=s.kafka_configs()
                    )
                    for s in missing
                ]
            )
        for spec in missing:
            log.info("created topic %s (%d partitions)", spec.name, spec.partitions)
        return [s.name for s in missing]
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()
