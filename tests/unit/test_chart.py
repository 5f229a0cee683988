"""The Helm chart renders (with Helm's own engine, through helm-python-sdk) with its default
and its GPU values; every object validates against the Kubernetes schemas (and the KEDA,
Prometheus Operator and Strimzi ones) and every pod against the restricted Pod Security
Standard; and its topics, KEDA triggers and commands agree with the code: the topic
catalogue, the pools' consumer groups, the CLI."""

from __future__ import annotations

import json
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
        "extra": {
            "claude": {"base_url": "https://api.anthropic.com", "api_key": "k", "kind": "anthropic"}
        },
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
# Provider keys in a Secret of the operator's own (its contents as the cluster would hold them).
EXISTING_SECRET = {"AIBROKER_OPENAI_API_KEY": "sk-own", "claude-key": "k-own"}
FROM_EXISTING_SECRET = {
    "providers": {
        "existingSecret": "llm-keys",
        "openai": {"baseUrl": "https://api.openai.com/v1"},
        "extra": {
            "claude": {
                "base_url": "https://api.anthropic.com",
                "kind": "anthropic",
                "apiKeyFrom": "claude-key",
            }
        },
    },
    **STRIMZI,
}
VARIANTS = {
    "default": {},
    "secured-kafka": SECURED,
    "gpu": gpu_values(),
    "strimzi": STRIMZI,
    "gpu-strimzi": {**gpu_values(), **STRIMZI},
    "providers-and-own-kafka-redis": WITH_PROVIDERS,
    "providers-from-existing-secret": FROM_EXISTING_SECRET,
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


VAR_REF = re.compile(r"\$\(([-._a-zA-Z0-9]+)\)")


def container_env(manifests: list[Manifest], container: Manifest) -> dict[str, str]:
    """A container's environment as the kubelet builds it: `envFrom` Secrets first (the
    release's, or `EXISTING_SECRET`), then `env` in order, `secretKeyRef`s resolved and
    `$(VAR)` expanded from what is defined before."""
    secrets = {"llm-keys": EXISTING_SECRET}
    for secret in of_kind(manifests, "Secret"):
        secrets[secret["metadata"]["name"]] = secret.get("stringData") or {}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(secrets[source["secretRef"]["name"]])
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = VAR_REF.sub(lambda m: env.get(m[1], m[0]), var["value"])
        elif (ref := var["valueFrom"].get("secretKeyRef")) and ref["name"] in secrets:
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
    return env


def settings_of(manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the dispatcher's pod would read: its env and the provider Secrets."""
    dispatcher = next(
        d
        for d in of_kind(manifests, "Deployment")
        if d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        == "dispatcher"
    )
    container = dispatcher["spec"]["template"]["spec"]["containers"][0]
    for name, value in container_env(manifests, container).items():
        monkeypatch.setenv(name, value)
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
    (shm,) = [v for v in pod["volumes"] if v["name"] == "dshm"]
    assert shm["emptyDir"]["medium"] == "Memory"
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/dev/shm"] == "dshm"  # noqa: S108 (the pod's shared memory)


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
        volumes = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert volumes["kafka-ca"] == "kafka-cluster-ca-cert"


# --- Pod Security, secrets, conventions ----------------------------------------------------

WORKLOADS = ("Deployment", "StatefulSet", "Job")
# The volume types the restricted standard allows (no hostPath, no in-tree network volumes).
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def pods(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for manifest in manifests:
        if manifest["kind"] in WORKLOADS:
            yield manifest["metadata"]["name"], manifest["spec"]["template"]["spec"]


def restricted_violations(pod: Manifest) -> list[str]:
    """What keeps a pod out of a namespace labelled `pod-security.kubernetes.io/enforce:
    restricted` (the checks of the restricted Pod Security Standard, as the admission
    controller applies them), plus a writable root filesystem, which this chart never
    allows."""
    found = [host for host in ("hostNetwork", "hostPID", "hostIPC") if pod.get(host)]
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']}: {kinds}")
    pod_context = pod.get("securityContext") or {}
    for container in pod["containers"] + pod.get("initContainers", []):
        context = {**pod_context, **(container.get("securityContext") or {})}
        found += [f"{container['name']}: {v}" for v in container_violations(container, context)]
    return found


def container_violations(container: Manifest, context: Manifest) -> Iterator[str]:
    """`context`: the container's security context over the pod's."""
    if context.get("privileged"):
        yield "privileged"
    if context.get("allowPrivilegeEscalation") is not False:
        yield "allowPrivilegeEscalation not false"
    capabilities = context.get("capabilities") or {}
    if "ALL" not in capabilities.get("drop", []):
        yield "capabilities not dropped"
    if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
        yield "capabilities added"
    if not context.get("runAsNonRoot"):
        yield "runAsNonRoot not set"
    if context.get("runAsUser") == 0:
        yield "runAsUser 0"
    seccomp = (context.get("seccompProfile") or {}).get("type")
    if seccomp not in {"RuntimeDefault", "Localhost"}:
        yield f"seccomp profile {seccomp}"
    if any(port.get("hostPort") for port in container.get("ports", [])):
        yield "hostPort"
    if context.get("readOnlyRootFilesystem") is not True:
        yield "writable root filesystem"


def mounted(pod: Manifest, container: Manifest, path: str) -> bool:
    """`path` is on a writable volume of the container (a StatefulSet's claims are not in
    the pod's `volumes`)."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        if mount.get("readOnly") or "secret" in volume or "configMap" in volume:
            continue
        if Path(path).is_relative_to(mount["mountPath"]):
            return True
    return False


def test_every_pod_passes_restricted_pod_security(manifests: list[Manifest]) -> None:
    workloads = list(pods(manifests))
    assert len(workloads) > 5
    for name, pod in workloads:
        assert restricted_violations(pod) == [], name


def test_the_pod_security_check_can_fail() -> None:
    _, pod = next(pods(rendered({})))
    assert restricted_violations(pod) == []
    changes: list[Manifest] = [
        {"runAsNonRoot": False},
        {"allowPrivilegeEscalation": True},
        {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}},
        {"readOnlyRootFilesystem": False},
        {"seccompProfile": {"type": "Unconfined"}},
    ]
    for change in changes:
        bad = json.loads(json.dumps(pod))
        bad["containers"][0]["securityContext"].update(change)
        assert restricted_violations(bad), change
    bad = json.loads(json.dumps(pod))
    bad["containers"][0]["ports"][0]["hostPort"] = 9100
    assert restricted_violations(bad)
    bad = {**pod, "volumes": [*pod["volumes"], {"name": "h", "hostPath": {"path": "/"}}]}
    assert restricted_violations(bad)
    rooted = rendered({"podSecurityContext": {"runAsNonRoot": False, "runAsUser": 0}})
    assert all(restricted_violations(pod) for _, pod in pods(rooted))


def test_what_the_processes_write_is_mounted(manifests: list[Manifest]) -> None:
    """With a read-only root filesystem, /tmp, the home directory (the Hugging Face, torch,
    vLLM and Paddle caches) and the files directory are writable volumes."""
    for name, pod in pods(manifests):
        for container in pod["containers"]:
            if container["name"] == "redis":
                assert mounted(pod, container, "/data"), name
                continue
            assert mounted(pod, container, "/tmp"), name  # noqa: S108 (the pod's, not ours)
            assert mounted(pod, container, "/home/aibroker/.cache/huggingface"), name
            files = container_env(manifests, container)["AIBROKER_BATCH_FILES_DIR"]
            if container["args"][0] in {"ingress", "batches"}:
                assert mounted(pod, container, files), name


def test_files_are_shared_through_an_existing_claim() -> None:
    manifests = rendered({"files": {"existingClaim": "aibroker-files"}})
    claims = {
        name: [v["persistentVolumeClaim"] for v in pod["volumes"] if v["name"] == "files"]
        for name, pod in pods(manifests)
    }
    assert claims["aib-ingress"] == claims["aib-batches"] == [{"claimName": "aibroker-files"}]
    assert claims["aib-dispatcher"] == []


def test_provider_keys_come_from_an_existing_secret() -> None:
    manifests = rendered(FROM_EXISTING_SECRET)
    (secret,) = of_kind(manifests, "Secret")
    held = set(secret["stringData"])
    assert not held & {"AIBROKER_OPENAI_API_KEY", "AIBROKER_PROVIDERS"}
    assert "AIB_PROVIDER_KEY_CLAUDE" not in json.dumps(secret)
    for deployment in of_kind(manifests, "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {"secretRef": {"name": "llm-keys"}} in container["envFrom"]
        assert "k-own" not in json.dumps(deployment)  # the key is referenced, never copied
        env = container_env(manifests, container)
        assert env["AIBROKER_OPENAI_API_KEY"] == "sk-own"
        providers = json.loads(env["AIBROKER_PROVIDERS"])
        assert providers["claude"]["api_key"] == "k-own"
        assert "apiKeyFrom" not in providers["claude"]


def test_provider_keys_are_inline_or_from_the_secret_not_both() -> None:
    mixed = json.loads(json.dumps(FROM_EXISTING_SECRET))
    mixed["providers"]["extra"]["other"] = {"base_url": "https://x.example", "api_key": "k"}
    with pytest.raises(helm.errors.HelmRenderError, match="not both"):
        rendered(mixed)
    orphan = {"providers": {"extra": {"claude": {"base_url": "https://x", "apiKeyFrom": "k"}}}}
    with pytest.raises(helm.errors.HelmRenderError, match="existingSecret"):
        rendered(orphan)


def checksums(values: dict[str, Any]) -> set[str]:
    return {
        d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        for d in of_kind(rendered(values), "Deployment")
    }


def test_pods_roll_when_their_config_changes() -> None:
    """The Secret is read at start only: a change in what it holds changes every pod
    template; anything else, or a second render (a fresh envelope secret each time outside a
    cluster), does not."""
    (before,) = checksums({})
    assert checksums({}) == {before}
    assert checksums({"services": {"ingress": {"replicas": 3}}}) == {before}
    for change in (
        {"providers": {"openai": {"baseUrl": "https://api.openai.com/v1", "apiKey": "sk-2"}}},
        {"auth": {"adminApiKey": "aib_new"}},
        {"auth": {"producerSecrets": {"acme": "s2"}}},
    ):
        (after,) = checksums(change)
        assert after != before, change


def test_values_are_maps_not_json_strings() -> None:
    """The schema refuses the old JSON strings, and the maps reach the settings as JSON."""
    for values in (
        {"localModels": {"embeddings": '{"all-minilm-l6-v2": "all-minilm-l6-v2"}'}},
        {"providers": {"extra": '{"claude": {"base_url": "x", "api_key": "k"}}'}},
        {"auth": {"producerSecrets": '{"acme": "s"}'}},
    ):
        with pytest.raises(helm.errors.HelmValuesError):
            rendered(values)
    models = {"a-model": "org/a-model", "b": "/models/b"}
    manifests = rendered({"localModels": {"vllm": models}})
    (container,) = of_kind(manifests, "Deployment")[0]["spec"]["template"]["spec"]["containers"]
    assert json.loads(container_env(manifests, container)["AIBROKER_VLLM_MODELS"]) == models


def test_the_values_files_meet_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    for name in ("values.yaml", "values-gpu.yaml"):
        jsonschema.validate(yaml.safe_load((CHART / name).read_text()), schema)
    with pytest.raises(helm.errors.HelmValuesError, match="replica"):
        rendered({"services": {"ingress": {"replica": 3}}})  # a typo is refused


def test_the_chart_passes_helm_lint() -> None:
    for values in ({}, gpu_values(), FROM_EXISTING_SECRET):
        report = helm.lint(str(CHART), values, strict=True)
        assert report["errors"] == []
        assert {m["error"] for m in report["messages"]} <= {"icon is recommended"}


def test_labels_and_image_tags_follow_helm_conventions() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{chart["appVersion"]}"' in project  # the image the chart runs
    label = f"{chart['name']}-{chart['version']}"
    manifests = rendered({**gpu_values(), **WITH_PROVIDERS})
    for manifest in manifests:
        assert manifest["metadata"]["labels"]["helm.sh/chart"] == label, manifest["kind"]
    images = {
        c["image"] for _, pod in pods(manifests) for c in pod["containers"] if c["name"] != "redis"
    }
    assert {image.rsplit(":", 1)[1] for image in images} == {chart["appVersion"]}
    assert "aibroker-vllm:" + chart["appVersion"] in images
    pinned = rendered({"image": {"tag": "1.2.3"}})
    assert {c["image"] for _, pod in pods(pinned) for c in pod["containers"]} >= {"aibroker:1.2.3"}
