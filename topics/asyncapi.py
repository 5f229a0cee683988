"""The AsyncAPI 3.0 document of the topics, generated from the catalogue and the envelopes: what
a direct producer (or any other reader of the topics) may rely on. `docs/reference/asyncapi.json`
is this document for the default settings; ingress serves its own at `/asyncapi.json`.

FastStream's generator was tried and does not fit: it has no Kafka `topicConfiguration`
(retention, cleanup), no message headers or keys, and it describes the one application that
holds the broker object, where this document describes topics written and read by many.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from aibroker.client.envelopes import BROKER_FIELDS
from aibroker.routes import RouteTable
from aibroker.rules.offload import offload_topics as batch_api_topics
from aibroker.settings import KafkaSettings, Settings
from aibroker.signing import SIGNATURE_HEADER
from schemas.audit import AuditEntry
from schemas.batches import BatchStarted
from schemas.bodies import BODIES
from schemas.envelopes import Chunk, Delivery, Outcome, Request, Result, UsageEvent
from topics.asyncapi_messages import BINDING, MESSAGES, message
from topics.catalog import TopicNames, TopicSpec, catalogue, reply_topic_spec

VERSION = "1.0.0"
"""The document's version: the envelopes' wire version (`v: 1`)."""
GENERIC_DISPATCH = ["{provider}", "{engine}.{model}"]
"""The dispatch topics of the reference document, as channel parameters."""
PARAMETERS = {
    "provider": "An external provider of the route table (`openai`, `anthropic`, `gemini`, …).",
    "engine": "A local engine (`vllm`, `embed`, `ocr`).",
    "model": "A local model's served name, lower-cased.",
    "instance": "An ingress instance (`AIBROKER_INGRESS_INSTANCE`).",
}

_ENVELOPES: list[type[BaseModel]] = [
    Request,
    Outcome,
    Result,
    Chunk,
    UsageEvent,
    BatchStarted,
    Delivery,
    AuditEntry,
    *(body for _, body in BODIES.values()),
]


def channel_id(address: str, prefix: str) -> str:
    """A channel's name in the document: its topic without the prefix, in `[A-Za-z0-9_-]`."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", address.removeprefix(prefix)).strip("-")


def _messages_of(spec: TopicSpec, names: TopicNames) -> list[str]:
    """Which envelopes a topic carries, by its place in the catalogue."""
    name = spec.name
    fixed = {
        names.requests_interactive: ["submission", "request"],
        names.requests_batch: ["submission", "request"],
        names.outcomes: ["outcome"],
        names.results: ["result"],
        names.usage: ["usageEvent"],
        names.batches: ["batchStarted"],
        names.webhooks: ["delivery"],
        names.dlq: ["deadLetter"],
        names.audit: ["auditEntry"],
        names.config: [],
    }
    if name in fixed:
        return fixed[name]
    if name.startswith(names.retry("")):
        return ["delayedRequest", "delayedDelivery"]
    if name.startswith(names.replies("")):
        return ["result", "chunk"]
    return ["request"]


def _channel(spec: TopicSpec, names: TopicNames) -> dict[str, Any]:
    configs = spec.kafka_configs()
    topic_config: dict[str, Any] = {
        "cleanup.policy": [configs["cleanup.policy"]],
        "retention.ms": spec.retention_ms,
    }
    if "max.message.bytes" in configs:
        topic_config["max.message.bytes"] = int(configs["max.message.bytes"])
    channel: dict[str, Any] = {
        "address": spec.name,
        "description": (
            f"Key: {spec.key}. Producers: {', '.join(spec.producers)}. "
            f"Consumers: {', '.join(spec.consumers)}."
        ),
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in _messages_of(spec, names)},
        "bindings": {
            "kafka": {
                "topic": spec.name,
                "partitions": spec.partitions,
                "topicConfiguration": topic_config,
                "bindingVersion": BINDING,
            }
        },
        "x-aibroker-key": spec.key,
        "x-aibroker-producers": list(spec.producers),
        "x-aibroker-consumers": list(spec.consumers),
        "x-aibroker-configs": configs,
    }
    params = re.findall(r"\{(\w+)\}", spec.name)
    if params:
        channel["parameters"] = {p: {"description": PARAMETERS[p]} for p in params}
    return channel


def envelope_schemas() -> dict[str, Any]:
    """Every envelope's JSON Schema, references pointing into `components/schemas`; plus the
    producer-facing request and the dead letter."""
    _, top = models_json_schema(
        [(m, "validation") for m in _ENVELOPES], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = dict(top["$defs"])
    schemas["RequestSubmission"] = submission_schema(schemas["Request"])
    schemas["DeadLetter"] = {
        "description": "The record's value as it was: usually a Request; any bytes for a "
        "record that did not decode.",
    }
    return dict(sorted(schemas.items()))


def submission_schema(request: dict[str, Any]) -> dict[str, Any]:
    """The request envelope as a producer writes it: without the broker's own fields, and with
    the body typed by `kind` (one variant per endpoint)."""
    props = {k: v for k, v in request["properties"].items() if k not in BROKER_FIELDS}
    broker_set = ", ".join(f"`{f}`" for f in sorted(BROKER_FIELDS))
    required = [r for r in request.get("required", []) if r not in BROKER_FIELDS]
    variants = []
    for endpoint, (kind, body) in BODIES.items():
        variants.append(
            {
                "title": f"{kind.value} ({endpoint})",
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    **props,
                    "kind": {"const": kind.value},
                    "body": {"$ref": f"#/components/schemas/{body.__name__}"},
                },
                "required": required,
            }
        )
    return {
        "title": "RequestSubmission",
        "description": "A new request, as a direct producer writes it to a requests lane "
        f"(keyed by its id, signed). Only the broker sets {broker_set}.",
        "oneOf": variants,
    }


def document(
    names: TopicNames,
    *,
    partitions: int,
    dispatch_topics: list[str] | None = None,
    max_message_bytes: int | None = None,
    offload_topics: list[str] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of these topics. Without `dispatch_topics`, the dispatch and
    reply topics are channel parameters (`{provider}`, `{engine}.{model}`, `{instance}`)."""
    dispatch = dispatch_topics
    if dispatch is None:
        dispatch = [names.dispatch(d) for d in GENERIC_DISPATCH]
    if offload_topics is None:
        offload_topics = [names.dispatch_batch("{provider}")]
    specs = [
        *catalogue(
            names,
            dispatch,
            partitions=partitions,
            max_message_bytes=max_message_bytes,
            offload_topics=offload_topics,
        ),
        reply_topic_spec(names, "{instance}", max_message_bytes=max_message_bytes),
    ]
    channels = {channel_id(s.name, names.prefix): _channel(s, names) for s in specs}
    operations: dict[str, Any] = {}
    for cid, channel in channels.items():
        messages = [{"$ref": f"#/channels/{cid}/messages/{m}"} for m in channel["messages"]]
        for action, who in (("send", "producers"), ("receive", "consumers")):
            operations[f"{action}-{cid}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{cid}"},
                "summary": ", ".join(channel[f"x-aibroker-{who}"]),
                "messages": messages,
            }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:aibroker:topics",
        "info": {
            "title": "aibroker topics",
            "version": VERSION,
            "description": "The Kafka topics of aibroker and the envelopes on them (JSON, "
            f"`v: 1`), under the prefix `{names.prefix}`. Direct producers write "
            "`RequestSubmission`s to a requests lane, keyed by the request id and signed "
            f"(`{SIGNATURE_HEADER}`), and read `Result`s from `results`.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {name: message(name) for name in MESSAGES},
            "schemas": envelope_schemas(),
        },
    }


def reference_document() -> dict[str, Any]:
    """The committed document (`docs/reference/asyncapi.json`): default prefix and partitions,
    dispatch and reply topics as parameters."""
    fields = KafkaSettings.model_fields
    return document(
        TopicNames(fields["topic_prefix"].default),
        partitions=fields["partitions"].default,
        max_message_bytes=fields["max_message_bytes"].default,
    )


def deployment_document(settings: Settings, routes: RouteTable) -> dict[str, Any]:
    """This deployment's document: its prefix, partitions, size limit and dispatch topics."""
    names = TopicNames(settings.kafka.topic_prefix)
    return document(
        names,
        partitions=settings.kafka.partitions,
        dispatch_topics=routes.dispatch_topics(names),
        max_message_bytes=settings.kafka.max_message_bytes,
        offload_topics=batch_api_topics(routes, names),
    )
