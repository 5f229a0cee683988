"""The chart's wiring of the workers that hold state: one offload pool, replaced rather than
rolled (two at once would create the same provider batches), never scaled by KEDA; the offload
policy from the values reaches every service as the settings it means; the RAG worker runs
once a Qdrant server is named."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from aibroker.settings import Settings
from aibroker.settings.offload import OffloadPolicy
from tests.unit.test_chart import container_env, of_kind, rendered

pytestmark = pytest.mark.unit

POLICY = {
    "offload": {
        "policy": "auto",
        "tenantPolicy": {"acme": "never"},
        "aliasPolicy": {"claude-haiku": "always"},
    }
}


def test_one_offload_pool_replaced_not_rolled() -> None:
    manifests = rendered({})
    (pool,) = [
        d
        for d in of_kind(manifests, "Deployment")
        if d["metadata"]["name"].endswith("-consumer-offload")
    ]
    assert pool["spec"]["replicas"] == 1
    assert pool["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = pool["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["consumer", "offload"]
    scaled = {s["spec"]["scaleTargetRef"]["name"] for s in of_kind(manifests, "ScaledObject")}
    assert pool["metadata"]["name"] not in scaled
    others = [d for d in of_kind(manifests, "Deployment") if d is not pool]
    assert all("strategy" not in d["spec"] for d in others)  # the others roll as before


def test_the_offload_policy_reaches_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    manifests = rendered(POLICY)
    for deployment in of_kind(manifests, "Deployment"):
        (container, *_) = deployment["spec"]["template"]["spec"]["containers"]
        env = container_env(manifests, container)
        for name in [n for n in env if n.startswith("AIBROKER_")]:
            monkeypatch.setenv(name, env[name])
        offload = Settings().offload
        assert offload.policy is OffloadPolicy.AUTO
        assert offload.tenant_policy == {"acme": OffloadPolicy.NEVER}
        assert offload.alias_policy == {"claude-haiku": OffloadPolicy.ALWAYS}


def test_the_default_policy_offloads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    manifests = rendered({})
    dispatcher = next(
        d for d in of_kind(manifests, "Deployment") if d["metadata"]["name"].endswith("-dispatcher")
    )
    (container,) = dispatcher["spec"]["template"]["spec"]["containers"]
    for name, value in container_env(manifests, container).items():
        monkeypatch.setenv(name, value)
    assert Settings().offload.policy is OffloadPolicy.NEVER


def test_a_policy_the_code_does_not_know_is_refused() -> None:
    with pytest.raises(helm.errors.HelmValuesError, match="policy"):
        rendered({"offload": {"policy": "sometimes"}})


def test_the_rag_worker_runs_once_given_a_qdrant_server() -> None:
    def rag(values: dict[str, object]) -> dict[str, Any]:
        manifests = rendered(values)
        (found,) = [
            d for d in of_kind(manifests, "Deployment") if d["metadata"]["name"].endswith("-rag")
        ]
        (container,) = found["spec"]["template"]["spec"]["containers"]
        return {"replicas": found["spec"]["replicas"], **container_env(manifests, container)}

    assert rag({})["replicas"] == 0  # no Qdrant server named: nothing to run against
    given = rag(
        {
            "vectors": {"qdrantUrl": "http://qdrant:6333"},
            "services": {"rag": {"args": ["rag"], "replicas": 2}},
        }
    )
    assert given["replicas"] == 2
    assert given["AIBROKER_RAG_QDRANT_URL"] == "http://qdrant:6333"
