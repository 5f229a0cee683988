"""The AsyncAPI document: the committed one is the generated one, its structure is AsyncAPI
3.0's, and real envelopes validate against the schemas it gives producers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from aibroker.cli import build_parser
from aibroker.client.envelopes import BROKER_FIELDS, new_request
from aibroker.kafka.acceptance import GIVE_UP_HEADER
from aibroker.kafka.dlq import DLQ_HEADERS
from aibroker.kafka.publisher import DEST_HEADER, DUE_HEADER, KIND_HEADER
from aibroker.settings import KafkaSettings, ProviderSettings, Settings
from aibroker.signing import SIGNATURE_HEADER
from schemas.envelopes import Kind, Target
from topics.asyncapi import reference_document
from topics.catalog import RETRY_DELAYS, TopicNames, catalogue

pytestmark = pytest.mark.unit

COMMITTED = Path(__file__).resolve().parents[2] / "docs/reference/asyncapi.json"
NAME = {"type": "string", "pattern": "^[A-Za-z0-9_\\-]+$"}
REF = {"type": "object", "required": ["$ref"], "properties": {"$ref": {"type": "string"}}}
# What of AsyncAPI 3.0's own schema (asyncapi/spec-json-schemas, schemas/3.0.0.json) no PyPI
# package ships: the objects this document uses, their required fields and closed shapes.
STRUCTURE: dict[str, Any] = {
    "type": "object",
    "required": ["asyncapi", "info"],
    "patternProperties": {"^x-[\\w\\d.\\-_]+$": {}},
    "additionalProperties": False,
    "properties": {
        "asyncapi": {"const": "3.0.0"},
        "id": {"type": "string", "format": "uri"},
        "info": {
            "type": "object",
            "required": ["title", "version"],
            "properties": {"title": {"type": "string"}, "version": {"type": "string"}},
        },
        "defaultContentType": {"type": "string"},
        "servers": {"type": "object"},
        "channels": {
            "type": "object",
            "propertyNames": NAME,
            "additionalProperties": {
                "type": "object",
                "patternProperties": {"^x-[\\w\\d.\\-_]+$": {}},
                "additionalProperties": False,
                "properties": {
                    "address": {"type": ["string", "null"]},
                    "title": {"type": "string"},
                    "summary": {"type": "string"},
                    "description": {"type": "string"},
                    "messages": {"type": "object", "propertyNames": NAME},
                    "parameters": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "enum": {"type": "array"},
                                "default": {"type": "string"},
                                "description": {"type": "string"},
                                "examples": {"type": "array"},
                                "location": {"type": "string"},
                            },
                        },
                    },
                    "bindings": {"type": "object"},
                },
            },
        },
        "operations": {
            "type": "object",
            "propertyNames": NAME,
            "additionalProperties": {
                "type": "object",
                "required": ["action", "channel"],
                "properties": {
                    "action": {"enum": ["send", "receive"]},
                    "channel": REF,
                    "messages": {"type": "array", "items": REF},
                },
            },
        },
        "components": {
            "type": "object",
            "properties": {
                "schemas": {"type": "object", "propertyNames": NAME},
                "messages": {
                    "type": "object",
                    "propertyNames": NAME,
                    "additionalProperties": {
                        "type": "object",
                        "properties": {
                            "headers": {
                                "type": "object",
                                "properties": {"type": {"const": "object"}},
                            },
                            "payload": {"type": "object"},
                            "contentType": {"type": "string"},
                            "name": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return reference_document()


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_the_committed_document_is_the_generated_one(doc: dict[str, Any]) -> None:
    committed = json.loads(COMMITTED.read_text())
    assert committed == doc, "run: aibroker asyncapi --reference > docs/reference/asyncapi.json"


def test_the_document_has_asyncapi_3_structure(doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(STRUCTURE).validate(doc)
    for ref in refs(doc):
        assert ref.startswith("#/"), ref
        resolve(doc, ref)  # raises KeyError on a dangling reference
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_the_structure_check_can_fail(doc: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(doc))
    broken["operations"]["send-results"]["action"] = "publish"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(STRUCTURE).validate(broken)
    broken = json.loads(json.dumps(doc))
    broken["channels"]["results"]["messages"]["result"]["$ref"] = "#/components/messages/nope"
    dangling = broken["channels"]["results"]["messages"]["result"]["$ref"]
    with pytest.raises(KeyError):
        resolve(broken, dangling)


def test_every_catalogue_topic_is_a_channel_with_key_roles_and_retention(
    doc: dict[str, Any],
) -> None:
    names = TopicNames()
    specs = catalogue(names, [names.dispatch("{provider}")], partitions=6)
    by_address = {c["address"]: c for c in doc["channels"].values()}
    for spec in specs:
        channel = by_address[spec.name]
        assert channel["x-aibroker-key"] == spec.key
        assert channel["x-aibroker-producers"] == list(spec.producers)
        assert channel["x-aibroker-consumers"] == list(spec.consumers)
        kafka = channel["bindings"]["kafka"]
        assert kafka["topicConfiguration"]["retention.ms"] == spec.retention_ms
        assert kafka["partitions"] == spec.partitions
    assert {names.retry(d) for d in RETRY_DELAYS} <= set(by_address)
    assert by_address["aib.replies.{instance}"]["parameters"].keys() == {"instance"}
    assert by_address["aib.dispatch.{engine}.{model}"]["parameters"].keys() == {"engine", "model"}
    assert by_address["aib.config"]["bindings"]["kafka"]["topicConfiguration"][
        "cleanup.policy"
    ] == ["compact"]


def test_every_envelope_is_a_message_with_its_key_and_headers(doc: dict[str, Any]) -> None:
    messages = doc["components"]["messages"]
    payloads = {m["payload"]["$ref"].rsplit("/", 1)[1] for m in messages.values()}
    assert {
        "RequestSubmission",
        "Request",
        "Result",
        "Outcome",
        "Chunk",
        "UsageEvent",
        "Delivery",
        "BatchStarted",
    } <= payloads
    headers = {name for m in messages.values() for name in m["headers"]["properties"]}
    assert {SIGNATURE_HEADER, GIVE_UP_HEADER, DUE_HEADER, DEST_HEADER, KIND_HEADER} <= headers
    assert set(DLQ_HEADERS) | {"traceparent"} <= headers
    assert messages["usageEvent"]["bindings"]["kafka"]["key"]["description"] == "tenant"
    results = doc["channels"]["results"]["messages"]
    assert list(results) == ["result"]
    assert set(doc["channels"]["replies-instance"]["messages"]) == {"result", "chunk"}


def validator(doc: dict[str, Any], schema: str) -> jsonschema.Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{schema}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(root)


def test_a_producers_envelope_validates_and_broker_fields_do_not(doc: dict[str, Any]) -> None:
    submission = validator(doc, "RequestSubmission")
    chat = new_request(
        tenant="acme",
        kind=Kind.CHAT,
        body={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        now=time.time(),
    )
    wire = chat.model_dump(mode="json", exclude_defaults=True)
    assert list(submission.iter_errors(wire)) == []
    assert set(BROKER_FIELDS).isdisjoint(wire)
    with_target = {**wire, "target": Target(provider="openai", model="m").model_dump()}
    assert list(submission.iter_errors(with_target))
    assert list(validator(doc, "Request").iter_errors(with_target)) == []
    # The body is typed by kind: a chat body under `embeddings` is refused.
    assert list(submission.iter_errors({**wire, "kind": "embeddings"}))
    embed = new_request(
        tenant="acme", kind=Kind.EMBEDDINGS, body={"model": "e", "input": "x"}, now=time.time()
    )
    assert list(submission.iter_errors(embed.model_dump(mode="json", exclude_defaults=True))) == []


def test_the_cli_prints_the_reference_and_this_deployments_document(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(["asyncapi", "--reference"])
    args.func(Settings(), args)
    assert json.loads(capsys.readouterr().out) == json.loads(COMMITTED.read_text())
    mine = Settings(
        kafka=KafkaSettings(topic_prefix="acme.", partitions=12),
        providers={"openai": ProviderSettings(base_url="http://127.0.0.1:9/v1", api_key="x")},
    )
    args = build_parser().parse_args(["asyncapi"])
    args.func(mine, args)
    doc = json.loads(capsys.readouterr().out)
    assert doc["channels"]["dispatch-openai"]["address"] == "acme.dispatch.openai"
    assert doc["channels"]["results"]["bindings"]["kafka"]["partitions"] == 12
