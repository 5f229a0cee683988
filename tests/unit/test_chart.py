"""The Helm chart renders (with Helm's own engine, through helm-python-sdk) with its default
and its GPU values; every object validates against the Kubernetes schemas (and the KEDA,
Prometheus Operator and Strimzi ones); and its topics, KEDA triggers and commands agree with
the code: the topic catalogue, the pools' consumer groups, the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor
from prometheus_client.metrics import MetricWrapperBase
from pydantic import BaseModel

from aibroker.cli import build_parser
from aibroker.routes import build_route_table
from aibroker.settings import Settings
from aibroker.telemetry import metrics
from topics.catalog import TopicNames, catalogue
from topics.chart import render as chart_topics

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm/aibroker"
K8S_VERSION = "1.30.0"

Manifest = dict[str, Any]


def rendered(values: dict[str, Any]) -> list[Manifest]:
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(values, name="aib", namespace="ai")
    return [doc for text in files.values() for doc in yaml.safe_load_all(text) if doc]


def gpu_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values-gpu.yaml").read_text())
    return values


STRIMZI = {"kafka": {"strimzi": {"topics": True}}}
WITH_PROVIDERS = {
    "providers": {
        "openai": {"baseUrl": "https://api.openai.com/v1", "apiKey": "sk-test"},
        "extra": '{"claude": {"base_url": "https://api.anthropic.com", "api_key": "k", '
        '"kind": "anthropic"}}',
    },
    "kafka": {"strimzi": {"deploy": True}},
    "redis": {"deploy": True},
}
SECURED = {
    "kafka": {
        "security": {
            "protocol": "SASL_SSL",
            "saslSecret": "aibroker-kafka-user",
            "caSecret": "kafka-cluster-ca-cert",
        }
    }
}
VARIANTS = {
    "default": {},
    "secured-kafka": SECURED,
    "gpu": gpu_values(),
    "strimzi": STRIMZI,
    "gpu-strimzi": {**gpu_values(), **STRIMZI},
    "providers-and-own-kafka-redis": WITH_PROVIDERS,
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def manifests(request: pytest.FixtureRequest) -> list[Manifest]:
    return rendered(VARIANTS[request.param])


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


# --- schemas -------------------------------------------------------------------------------

STRIMZI_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
STRIMZI_METADATA = {
    "type": "object",
    "required": ["name", "labels"],
    "properties": {
        "name": STRIMZI_NAME,
        "labels": {"type": "object", "required": ["strimzi.io/cluster"]},
    },
}
STRIMZI_SCHEMAS: dict[str, dict[str, Any]] = {
    # The fields of Strimzi's v1beta2 CRDs this chart writes (KafkaTopic's spec in full).
    "KafkaTopic": {
        "type": "object",
        "required": ["spec", "metadata"],
        "properties": {
            "metadata": STRIMZI_METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["partitions", "replicas"],
                "properties": {
                    "topicName": {"type": "string", "pattern": r"^[a-zA-Z0-9._-]{1,249}$"},
                    "partitions": {"type": "integer", "minimum": 1},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
                    "config": {
                        "type": "object",
                        "additionalProperties": {"type": ["string", "number", "boolean"]},
                    },
                },
            },
        },
    },
    "KafkaNodePool": {
        "type": "object",
        "properties": {
            "metadata": STRIMZI_METADATA,
            "spec": {
                "type": "object",
                "required": ["replicas", "roles", "storage"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 0},
                    "roles": {"type": "array", "items": {"enum": ["controller", "broker"]}},
                    "storage": {"type": "object", "required": ["type"]},
                },
            },
        },
    },
    "Kafka": {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["kafka"],
                "properties": {
                    "kafka": {
                        "type": "object",
                        "required": ["listeners"],
                        "properties": {
                            "listeners": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "required": ["name", "port", "type", "tls"],
                                },
                            }
                        },
                    }
                },
            }
        },
    },
}
CRD_MODELS: dict[str, type[BaseModel]] = {
    "ScaledObject": ScaledObject,
    "ServiceMonitor": ServiceMonitor,
    "PrometheusRule": PrometheusRule,
}


def strict_crd(model: type[BaseModel], manifest: Manifest) -> None:
    """Types checked by the CRD's generated model, and no field the CRD does not know (the
    model drops unknown fields: what it gives back must be all that went in)."""
    parsed = model.model_validate(manifest)
    assert parsed.model_dump(by_alias=True, exclude_unset=True, mode="json") == manifest


def test_every_object_validates_against_its_schema(manifests: list[Manifest]) -> None:
    kinds = set()
    for manifest in manifests:
        kind = manifest["kind"]
        kinds.add(kind)
        if kind in CRD_MODELS:
            strict_crd(CRD_MODELS[kind], manifest)
        elif kind in STRIMZI_SCHEMAS:
            assert manifest["apiVersion"] == "kafka.strimzi.io/v1beta2"
            jsonschema.validate(manifest, STRIMZI_SCHEMAS[kind])
        else:
            kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    assert {"Deployment", "ScaledObject", "PodDisruptionBudget", "ServiceMonitor"} <= kinds
    assert {"NetworkPolicy", "HorizontalPodAutoscaler", "PrometheusRule", "Secret"} <= kinds


def test_a_bad_object_is_caught() -> None:
    """The validators above can fail: a typo in a field, a wrong type."""
    deployment = of_kind(rendered({}), "Deployment")[0]
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    scaled = of_kind(rendered({}), "ScaledObject")[0]
    scaled["spec"]["maxReplicas"] = 3
    with pytest.raises(AssertionError):
        strict_crd(ScaledObject, scaled)
    topic = of_kind(rendered(STRIMZI), "KafkaTopic")[0]
    topic["spec"]["partitions"] = "six"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(topic, STRIMZI_SCHEMAS["KafkaTopic"])


# --- agreement with the code ---------------------------------------------------------------


def settings_of(manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the dispatcher's pod would read: its env and the provider Secret."""
    dispatcher = next(
        d
        for d in of_kind(manifests, "Deployment")
        if d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        == "dispatcher"
    )
    container = dispatcher["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    secret = of_kind(manifests, "Secret")[0].get("stringData") or {}
    for name, value in {**env, **secret}.items():
        monkeypatch.setenv(name, str(value))
    return Settings()


def test_strimzi_topics_are_the_catalogue(
    manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    topics = of_kind(manifests, "KafkaTopic")
    if not topics:
        assert of_kind(manifests, "Job"), "without Strimzi topics the topics Job creates them"
        return
    assert not of_kind(manifests, "Job")
    settings = settings_of(manifests, monkeypatch)
    names = TopicNames(settings.kafka.topic_prefix)
    expected = {
        spec.name: (spec.partitions, spec.kafka_configs())
        for spec in catalogue(
            names,
            build_route_table(settings).dispatch_topics(names),
            partitions=settings.kafka.partitions,
            max_message_bytes=settings.kafka.max_message_bytes,
        )
    }
    got = {t["spec"]["topicName"]: (t["spec"]["partitions"], t["spec"]["config"]) for t in topics}
    assert got == expected
    assert {t["spec"]["replicas"] for t in topics} == {settings.kafka.replication_factor}


def test_the_charts_topic_file_is_up_to_date() -> None:
    assert (CHART / "files/topics.yaml").read_text() == chart_topics(), (
        "run `python -m topics.chart`"
    )


def test_keda_scales_each_pool_on_its_own_group_and_topic(
    manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(manifests, monkeypatch)
    routes = build_route_table(settings)
    names = TopicNames(settings.kafka.topic_prefix)
    deployments = {d["metadata"]["name"]: d for d in of_kind(manifests, "Deployment")}
    scaled = of_kind(manifests, "ScaledObject")
    assert scaled
    for obj in scaled:
        deployment = deployments[obj["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in deployment["spec"]  # KEDA owns the count
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        (trigger,) = obj["spec"]["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "kafka"
        assert meta["allowIdleConsumers"] == "false"  # never more replicas than partitions
        if args[1] == "external":
            assert meta["consumerGroup"] == "aib-pool-external"
            assert "topic" not in meta  # every provider's topic of the group
            continue
        model = routes.local[args[3]].target  # consumer <kind> --model <served name>
        assert meta["consumerGroup"] == routes.group(model)
        assert meta["topic"] == routes.topic(names, model)


def test_every_deployment_runs_a_real_command(manifests: list[Manifest]) -> None:
    parser = build_parser()
    for deployment in of_kind(manifests, "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        parser.parse_args(spec["containers"][0]["args"])  # exits on an unknown command
        grace = spec["terminationGracePeriodSeconds"]
        assert grace >= 60, deployment["metadata"]["name"]


def test_gpu_pools_get_gpus_and_gpu_nodes() -> None:
    (vllm,) = [
        d for d in of_kind(rendered(gpu_values()), "Deployment") if "vllm" in d["metadata"]["name"]
    ]
    pod = vllm["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"


# --- dashboard and alerts ------------------------------------------------------------------

METRIC = re.compile(r"\baibroker_[a-z_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def known_metrics() -> set[str]:
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            names.update(family.name for family in value.describe())
    return names


def referenced(text: str) -> Iterator[str]:
    for name in METRIC.findall(text):
        for suffix in SUFFIXES:
            name = name.removesuffix(suffix)
        yield name


def test_dashboard_and_alerts_use_only_real_metrics() -> None:
    known = known_metrics()
    assert "aibroker_consumer_lag" in known
    for file in ("dashboard.json", "alerts.yaml"):
        text = (CHART / "files" / file).read_text()
        names = set(referenced(text))
        assert names, file
        assert names <= known, (file, names - known)


def test_alert_rules_are_well_formed() -> None:
    rules = yaml.safe_load((CHART / "files/alerts.yaml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {a["alert"] for a in alerts} >= {
        "AibrokerConsumerLagGrowing",
        "AibrokerErrorRateHigh",
        "AibrokerDeadLettersGrowing",
        "AibrokerCircuitBreakerOpen",
    }
    for alert in alerts:
        assert alert["expr"].strip()
        assert alert["labels"]["severity"] in {"page", "ticket"}
        assert alert["annotations"]["summary"]


def test_a_secured_cluster_reaches_every_kafka_client() -> None:
    """SASL credentials from their Secret and the CA mounted, in every Deployment and in the
    topics Job: each one connects to the cluster."""
    manifests = rendered(SECURED)
    pods = [m["spec"]["template"]["spec"] for m in of_kind(manifests, "Deployment")]
    pods += [m["spec"]["template"]["spec"] for m in of_kind(manifests, "Job")]
    assert len(pods) > 3
    for pod in pods:
        container = pod["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["AIBROKER_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        secret = env["AIBROKER_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": "aibroker-kafka-user", "key": "password"}
        ca = Path(env["AIBROKER_KAFKA_SSL_CAFILE"]["value"])
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert str(ca.parent) == mounts["kafka-ca"]
        volumes = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"]}
        assert volumes["kafka-ca"] == "kafka-cluster-ca-cert"
