"""Apache Kafka on this machine without Docker: the broker's jars fetched once through Maven into
a cache, KRaft nodes (1, or 3 as a cluster) configured, formatted on their own log dirs and run.

Used by `aibroker dev --kafka apache`, by the tests (the engine of record) and the fault drills.
Each node is broker and controller at once (KRaft combined mode); its data outlives a restart.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aibroker.devstack.procs import die_with_parent, stop_process

SCALA = "2.13"
SLF4J = "1.7.36"
"""The slf4j line Kafka 3.9 logs through; reload4j is its log4j 1.x backend."""
HEAP = ["-Xms128m", "-Xmx768m"]
JVM = [*HEAP, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]


class KafkaSetupError(RuntimeError):
    """The dev Apache Kafka cannot be set up here; the message says what to install."""


def _require(tool: str, how: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise KafkaSetupError(
            f"Apache Kafka needs `{tool}`, which is not on PATH: {how}. "
            "Or use the embedded Tansu broker (AIBROKER_DEV_KAFKA=tansu, the default), or point "
            "AIBROKER_KAFKA_BOOTSTRAP at a running cluster."
        )
    return path


def java() -> str:
    return _require("java", "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre)")


def maven() -> str:
    return _require("mvn", "install Apache Maven (Debian: apt-get install maven)")


POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>aibroker</groupId><artifactId>kafka-runtime</artifactId><version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_{scala}</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId>
      <version>{slf4j}</version>
    </dependency>
  </dependencies>
</project>
"""

LOG4J = """log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
"""


def kafka_libs(version: str, cache: Path) -> Path:
    """The broker's jars (`<cache>/kafka-<version>/libs`), fetched with Maven the first time;
    later calls, from any checkout, reuse them. Concurrent first calls fetch once."""
    home = cache.expanduser() / f"kafka-{version}"
    libs = home / "libs"
    if (home / ".complete").exists():
        return libs
    java()
    mvn = maven()
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / ".complete").exists():
            return libs
        (home / "pom.xml").write_text(POM.format(version=version, scala=SCALA, slf4j=SLF4J))
        staging = home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        done = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(home / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            raise KafkaSetupError(
                f"Maven could not fetch Apache Kafka {version} (org.apache.kafka:kafka_{SCALA}) "
                f"from Maven Central:\n{(done.stdout + done.stderr)[-2000:]}"
            )
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        (home / "log4j.properties").write_text(LOG4J)
        (home / ".complete").touch()
    return libs


@dataclass(frozen=True)
class Listener:
    """A client listener besides the plain one (a secured one, for tests of SASL and TLS)."""

    name: str
    port: int
    protocol: str
    advertised_port: int | None = None
    """The port clients are told to use, when something (a test's proxy) stands in front."""


@dataclass(frozen=True)
class Node:
    node_id: int
    port: int
    controller_port: int
    listeners: tuple[Listener, ...] = ()


@dataclass(frozen=True)
class Cluster:
    """The plan of a KRaft cluster: every node's ports and directories, its configs."""

    libs: Path
    data_dir: Path
    nodes: tuple[Node, ...]
    host: str = "127.0.0.1"
    properties: dict[str, str] = field(default_factory=dict)
    """Extra broker properties (security settings of extra listeners, for instance)."""
    format_args: tuple[str, ...] = ()
    """Extra arguments to `kafka-storage format` (`--add-scram ...`)."""

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{n.port}" for n in self.nodes)

    def node_dir(self, node: Node) -> Path:
        return self.data_dir / f"node-{node.node_id}"

    def config(self, node: Node) -> str:
        """server.properties of one node."""
        rf = len(self.nodes)
        voters = ",".join(f"{n.node_id}@{self.host}:{n.controller_port}" for n in self.nodes)
        extra = node.listeners
        listeners = [f"PLAINTEXT://{self.host}:{node.port}"]
        listeners += [f"{x.name}://{self.host}:{x.port}" for x in extra]
        advertised = [f"PLAINTEXT://{self.host}:{node.port}"]
        advertised += [f"{x.name}://{self.host}:{x.advertised_port or x.port}" for x in extra]
        protocols = ["CONTROLLER:PLAINTEXT", "PLAINTEXT:PLAINTEXT"]
        protocols += [f"{x.name}:{x.protocol}" for x in extra]
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "listeners": ",".join([*listeners, f"CONTROLLER://{self.host}:{node.controller_port}"]),
            "advertised.listeners": ",".join(advertised),
            "listener.security.protocol.map": ",".join(protocols),
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.node_dir(node) / "log"),
            # Internal topics as durable as the cluster allows (one node: one replica).
            "offsets.topic.replication.factor": str(rf),
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(min(2, rf)),
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(min(2, rf)),
            # Fewer partitions than the default 50: a fresh cluster's first group joins fast.
            "offsets.topic.num.partitions": "12",
            "transaction.state.log.num.partitions": "12",
            # A new group starts at once instead of waiting 3 s for more members.
            "group.initial.rebalance.delay.ms": "0",
            # aibroker creates every topic it uses; a missing one is a bug, not a new topic.
            "auto.create.topics.enable": "false",
            "num.network.threads": "2",
            "num.io.threads": "4",
            **self.properties,
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def argv(self, node: Node) -> list[str]:
        """The command that runs one node (its properties written by `prepare`)."""
        log4j = self.libs.parent / "log4j.properties"
        return [
            java(),
            *JVM,
            f"-Dlog4j.configuration=file:{log4j}",
            "-cp",
            f"{self.libs}/*",
            "kafka.Kafka",
            str(self.node_dir(node) / "server.properties"),
        ]

    def prepare(self) -> None:
        """Write each node's properties; format the storage of nodes that have none yet (a
        restart keeps the data, and the cluster id, it had)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        id_file = self.data_dir / "cluster.id"
        if not id_file.exists():
            id_file.write_text(new_cluster_id())
        cluster_id = id_file.read_text().strip()
        for node in self.nodes:
            home = self.node_dir(node)
            home.mkdir(parents=True, exist_ok=True)
            config = home / "server.properties"
            config.write_text(self.config(node))
            if (home / "log" / "meta.properties").exists():
                continue
            done = subprocess.run(
                [
                    java(),
                    *HEAP,
                    "-cp",
                    f"{self.libs}/*",
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={cluster_id}",
                    "-c",
                    str(config),
                    *self.format_args,
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if done.returncode != 0:
                raise KafkaSetupError(f"formatting {home} failed:\n{done.stdout}{done.stderr}")


def new_cluster_id() -> str:
    """A random cluster id as Kafka makes one: URL-safe base64 of a UUID, never starting with
    "-" (the storage tool would read such an id as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def plan(
    libs: Path,
    data_dir: Path,
    brokers: int,
    *,
    host: str = "127.0.0.1",
    listeners: tuple[tuple[str, str], ...] = (),
    properties: dict[str, str] | None = None,
    format_args: tuple[str, ...] = (),
) -> Cluster:
    """A cluster of `brokers` nodes on free ports; `listeners` are extra (name, protocol)
    client listeners every node gets."""
    from aibroker.devstack.embedded import free_port

    nodes = tuple(
        Node(
            node_id=i,
            port=free_port(host),
            controller_port=free_port(host),
            listeners=tuple(Listener(name, free_port(host), proto) for name, proto in listeners),
        )
        for i in range(1, brokers + 1)
    )
    return Cluster(libs, data_dir, nodes, host, properties or {}, format_args)


class Running:
    """A started cluster whose nodes can be killed, frozen, stopped and started again on their
    own log dirs (the fault drills)."""

    def __init__(self, cluster: Cluster, log_dir: Path) -> None:
        self.cluster = cluster
        self.log_dir = log_dir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap

    def node(self, node_id: int) -> Node:
        return next(n for n in self.cluster.nodes if n.node_id == node_id)

    def start(self, node_id: int | None = None, timeout_s: float = 90) -> None:
        """Start one node, or all; return once each accepts connections."""
        from aibroker.devstack.embedded import wait_for_port

        nodes = self.cluster.nodes if node_id is None else (self.node(node_id),)
        for node in nodes:
            log = self.log_dir / f"kafka-{node.node_id}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("ab") as out:
                self.procs[node.node_id] = subprocess.Popen(
                    self.cluster.argv(node),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=die_with_parent,
                    start_new_session=True,
                )
        for node in nodes:  # every listener: a TLS one may open after the plaintext one
            for port in (node.port, *(x.port for x in node.listeners)):
                wait_for_port(self.cluster.host, port, timeout_s, self.procs[node.node_id])

    def kill(self, node_id: int) -> None:
        """SIGKILL: what a crashed machine looks like to the others."""
        proc = self.procs.pop(node_id)
        proc.kill()
        proc.wait()

    def freeze(self, node_id: int) -> None:
        """SIGSTOP: alive to TCP, answering nothing (a long GC pause, a stuck disk)."""
        self.procs[node_id].send_signal(signal.SIGSTOP)

    def thaw(self, node_id: int) -> None:
        self.procs[node_id].send_signal(signal.SIGCONT)

    def stop(self, node_id: int | None = None) -> None:
        """A controlled shutdown of one node, or all."""
        ids = list(self.procs) if node_id is None else [node_id]
        for i in ids:
            proc = self.procs.pop(i)
            proc.send_signal(signal.SIGCONT)  # a frozen node must be able to hear SIGTERM
            stop_process(proc, timeout_s=30)


@contextlib.contextmanager
def running(cluster: Cluster, log_dir: Path) -> Iterator[Running]:
    """The cluster formatted, started and ready for clients; stopped however the block ends."""
    cluster.prepare()
    nodes = Running(cluster, log_dir)
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()
