"""The Apache Kafka plan: what each node is told, and the error when Java or Maven is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aibroker.devstack import apache_kafka
from aibroker.devstack.apache_kafka import Cluster, KafkaSetupError, Listener, Node
from aibroker.settings import Settings

pytestmark = pytest.mark.unit


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_three_nodes_are_one_quorum_with_durable_defaults(tmp_path: Path) -> None:
    nodes = tuple(Node(i, 9000 + i, 9100 + i) for i in (1, 2, 3))
    config = props(Cluster(tmp_path / "libs", tmp_path, nodes).config(nodes[1]))
    assert config["node.id"] == "2"
    assert config["process.roles"] == "broker,controller"
    assert (
        config["controller.quorum.voters"] == "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"
    )
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9002,CONTROLLER://127.0.0.1:9102"
    assert config["log.dirs"] == str(tmp_path / "node-2" / "log")
    assert (config["default.replication.factor"], config["min.insync.replicas"]) == ("3", "2")
    assert config["offsets.topic.replication.factor"] == "3"
    assert config["auto.create.topics.enable"] == "false"


def test_one_node_asks_for_no_more_replicas_than_it_has(tmp_path: Path) -> None:
    node = Node(1, 9001, 9101)
    config = props(Cluster(tmp_path / "libs", tmp_path, (node,)).config(node))
    assert (config["default.replication.factor"], config["min.insync.replicas"]) == ("1", "1")
    assert config["transaction.state.log.min.isr"] == "1"


def test_an_extra_listener_is_advertised_where_its_clients_reach_it(tmp_path: Path) -> None:
    node = Node(1, 9001, 9101, (Listener("PROXIED", 9201, "PLAINTEXT", advertised_port=9301),))
    config = props(Cluster(tmp_path / "libs", tmp_path, (node,)).config(node))
    assert "PROXIED://127.0.0.1:9201" in config["listeners"]
    assert config["advertised.listeners"] == ("PLAINTEXT://127.0.0.1:9001,PROXIED://127.0.0.1:9301")
    assert "PROXIED:PLAINTEXT" in config["listener.security.protocol.map"]


@pytest.mark.parametrize("missing", ["java", "mvn"])
def test_without_java_or_maven_the_error_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    found = {"java": "/usr/bin/java", "mvn": "/usr/bin/mvn"}
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == missing else found[tool])
    with pytest.raises(KafkaSetupError) as raised:
        apache_kafka.kafka_libs("3.9.1", tmp_path / "cache")
    message = str(raised.value)
    assert f"`{missing}`" in message
    assert "apt-get install" in message
    assert "AIBROKER_DEV_KAFKA=tansu" in message  # and the way around it


def test_the_dev_cluster_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIBROKER_DEV_KAFKA", "apache")
    monkeypatch.setenv("AIBROKER_DEV_KAFKA_BROKERS", "3")
    dev = Settings().dev
    assert (dev.kafka, dev.kafka_brokers) == ("apache", 3)


def test_a_cluster_id_never_reads_as_an_option() -> None:
    """One URL-safe id in 64 would start with "-", which the storage tool takes for a flag
    (a CI run lost two drills to it)."""
    ids = {apache_kafka.new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert not any(cluster_id.startswith("-") for cluster_id in ids)
    assert all(len(cluster_id) == 22 for cluster_id in ids)
