import pytest
from aiokafka.admin import AIOKafkaAdminClient

from aibroker.settings import Settings
from topics.apply import apply_topics
from topics.catalog import TopicNames, catalogue

pytestmark = pytest.mark.integration


async def test_apply_creates_the_catalogue_once(settings: Settings) -> None:
    assert settings.kafka.bootstrap
    names = TopicNames(settings.kafka.topic_prefix)
    specs = catalogue(names, [names.dispatch("openai"), names.dispatch("mock")], partitions=2)
    created = await apply_topics(settings.kafka.bootstrap, specs)
    assert sorted(created) == sorted(s.name for s in specs)
    assert await apply_topics(settings.kafka.bootstrap, specs) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([names.dispatch("openai"), names.dlq])
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    assert partitions == {names.dispatch("openai"): 2, names.dlq: 1}
