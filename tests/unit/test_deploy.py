"""The compose file parses, pins its images, and runs only commands the CLI has; the image's
user is the one the chart's pods run as."""

import re
from pathlib import Path

import pytest
import yaml

from aibroker.cli import build_parser

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
DEFAULTED = re.compile(r"\$\{\w+:-([^}]*)\}")
"""`${VAR:-default}`, as compose expands it with VAR unset."""


def compose() -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load(
        (ROOT / "docker-compose.yml").read_text()
    )["services"]
    return services


def test_every_image_is_pinned() -> None:
    for name, service in compose().items():
        image = str(service.get("image", ""))
        if "build" in service:
            continue  # built from this repository
        assert ":" in image, name
        assert not image.endswith(":latest"), name


def test_every_command_exists_in_the_cli() -> None:
    parser = build_parser()
    commands = [
        service["command"]
        for service in compose().values()
        if "command" in service and str(service.get("image", "aibroker:dev")).startswith("aibroker")
    ]
    assert commands
    for command in commands:
        assert isinstance(command, list)
        parts = [DEFAULTED.sub(r"\1", str(part)) for part in command]  # as compose expands
        parser.parse_args(parts)  # exits on an unknown command


def test_the_full_stack_is_there() -> None:
    services = compose()
    wanted = {"kafka", "redis", "topics", "ingress", "dispatcher", "consumer-external", "results"}
    wanted |= {"webhooks", "batches", "prometheus", "grafana", "otel-collector", "jaeger"}
    assert wanted <= set(services)
    assert services["consumer-vllm"]["profiles"] == ["gpu"]
    assert services["consumer-paddle"]["profiles"] == ["gpu"]


def test_prometheus_scrapes_every_broker_service() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    scraped = set(job["dns_sd_configs"][0]["names"])
    broker = {
        name
        for name, service in compose().items()
        if str(service.get("image", "")).startswith("aibroker") and name != "topics"
    }
    assert broker - {"mock-provider"} <= scraped


def test_every_mounted_file_exists() -> None:
    for name, service in compose().items():
        for volume in service.get("volumes", []):  # type: ignore[attr-defined]
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)


def dockerfile_final_stage() -> list[tuple[str, str]]:
    """(instruction, arguments) of the image's last stage."""
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    steps = [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]
    last = max(i for i, step in enumerate(steps) if step[0] == "FROM")
    return [(step[0], step[1] if len(step) > 1 else "") for step in steps[last:]]


def test_the_image_user_is_the_charts_non_root_user() -> None:
    """Kubernetes can only check `runAsNonRoot` against a numeric USER; the chart's user,
    group and the home directory it mounts writable are the image's."""
    stage = dockerfile_final_stage()
    (user,) = [args for op, args in stage if op == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), user
    assert int(uid) != 0
    values = yaml.safe_load((ROOT / "helm/aibroker/values.yaml").read_text())
    pod = values["podSecurityContext"]
    assert pod["runAsNonRoot"] is True
    assert (int(uid), int(gid)) == (pod["runAsUser"], pod["runAsGroup"])
    run = " ".join(args for op, args in stage if op == "RUN")
    assert f"--uid {uid}" in run
    assert f"--gid {gid}" in run
    env = " ".join(args for op, args in stage if op == "ENV")
    assert "HOME=/home/aibroker" in env
    helpers = (ROOT / "helm/aibroker/templates/_helpers.tpl").read_text()
    assert "mountPath: /home/aibroker}" in helpers
