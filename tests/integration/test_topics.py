from collections.abc import Awaitable, Callable

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from aibroker.kafka.clients import make_admin
from aibroker.settings import Settings
from tests.waiting import eventually
from topics.apply import apply_topics, topic_configs
from topics.catalog import DAY_MS, TopicNames, catalogue

pytestmark = [pytest.mark.integration, pytest.mark.smoke]


async def test_apply_creates_the_catalogue_once(settings: Settings) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    specs = catalogue(names, [names.dispatch("openai"), names.dispatch("mock")], partitions=2)
    created = await apply_topics(settings.kafka, specs)
    assert sorted(created) == sorted(s.name for s in specs)
    assert await apply_topics(settings.kafka, specs) == []
    admin = make_admin(settings.kafka)
    await admin.start()
    try:
        described = await admin.describe_topics([names.dispatch("openai"), names.dlq])
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    assert partitions == {names.dispatch("openai"): 2, names.dlq: 1}


async def test_topic_configs_are_applied_and_restored(settings: Settings) -> None:
    """On Apache Kafka the brokers hold the catalogue's configs, and `apply` puts back one an
    operator changed by hand."""
    if settings.kafka.engine != "kafka":
        pytest.skip("Tansu does not keep topic configs the way Kafka does")
    names = TopicNames(settings.kafka.topic_prefix)
    specs = catalogue(names, [], partitions=1, max_message_bytes=8 * 1024 * 1024)
    await apply_topics(settings.kafka, specs)
    admin = make_admin(settings.kafka)
    await admin.start()
    try:

        async def described() -> dict[str, dict[str, str]] | None:
            found = await topic_configs(admin, [names.usage, names.dlq])
            return found if len(found) == 2 else None

        configs = await eventually(described, what="the new topics' configs")
        assert configs is not None
        assert configs[names.usage]["retention.ms"] == str(30 * DAY_MS)
        assert configs[names.usage]["max.message.bytes"] == str(8 * 1024 * 1024)
        assert configs[names.usage]["min.insync.replicas"] == "1"  # one replica: nothing more
        altered = {"retention.ms": "1000", "cleanup.policy": "delete"}
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, names.dlq, configs=altered)]
        )

        async def retention() -> str:  # config changes reach the brokers through the metadata log
            return (await topic_configs(admin, [names.dlq])).get(names.dlq, {})["retention.ms"]

        await eventually(lambda: _equals(retention, "1000"), what="the operator's change")
        assert await apply_topics(settings.kafka, specs) == []
        await eventually(lambda: _equals(retention, str(30 * DAY_MS)), what="the restored config")
        restored = (await topic_configs(admin, [names.dlq]))[names.dlq]
        assert restored["max.message.bytes"] == str(8 * 1024 * 1024)
    finally:
        await admin.close()


async def _equals(read: Callable[[], Awaitable[str]], wanted: str) -> bool:
    return await read() == wanted
