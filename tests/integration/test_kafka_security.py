"""Secured clusters: every client (producer, consumer, `topics apply`, the lag reader) connects
with the security settings, against Apache Kafka with a SASL_SSL listener (PLAIN and
SCRAM-SHA-512) and a mutual-TLS listener, on certificates this test makes."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aibroker.devstack import apache_kafka
from aibroker.kafka.clients import make_consumer, make_producer, running_producer
from aibroker.kafka.lag import lag_reader
from aibroker.settings import KafkaSettings
from tests.services import apache_cluster, require_apache_kafka
from tests.waiting import eventually
from topics.apply import apply_topics
from topics.catalog import TopicSpec

pytestmark = [pytest.mark.integration, pytest.mark.apache]

PLAIN_USERS = {"alice": "alice-secret"}
SCRAM_USER = ("bob", "bob-secret")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(ca[0].subject if ca else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if ca is None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    else:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca[1] if ca else key, hashes.SHA256())


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    text = cert.public_bytes(serialization.Encoding.PEM)
    if key is None:
        return text
    return (
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + text
    )


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA, a broker certificate for 127.0.0.1 and a client certificate, as PEM files."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("aibroker test CA", ca_key, None)
    files = {"ca": folder / "ca.pem", "broker": folder / "broker.pem"}
    files |= {"client_cert": folder / "client.pem", "client_key": folder / "client.key"}
    files["ca"].write_bytes(_pem(ca))
    broker_key = ec.generate_private_key(ec.SECP256R1())
    files["broker"].write_bytes(_pem(_issue("broker", broker_key, (ca, ca_key)), broker_key))
    client_key = ec.generate_private_key(ec.SECP256R1())
    files["client_cert"].write_bytes(_pem(_issue("aibroker", client_key, (ca, ca_key))))
    files["client_key"].write_bytes(
        client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[apache_kafka.Running, dict[str, Path]]]:
    require_apache_kafka()
    workdir = tmp_path_factory.mktemp("secured")
    certs = make_certificates(workdir / "certs")
    plain_users = " ".join(f'user_{u}="{p}"' for u, p in PLAIN_USERS.items())
    properties = {
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="alice" password="{PLAIN_USERS["alice"]}" {plain_users};'
        ),
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(certs["broker"]),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(certs["ca"]),
        "listener.name.mtls.ssl.client.auth": "required",
    }
    user, password = SCRAM_USER
    cluster = apache_cluster(
        workdir,
        listeners=(("SASL_SSL", "SASL_SSL"), ("MTLS", "SSL")),
        properties=properties,
        format_args=("--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"),
    )
    with apache_kafka.running(cluster, workdir) as nodes:
        yield nodes, certs


def _port(nodes: apache_kafka.Running, listener: str) -> int:
    return next(x.port for x in nodes.cluster.nodes[0].listeners if x.name == listener)


def sasl_settings(
    nodes: apache_kafka.Running, certs: dict[str, Path], mechanism: str, user: str, password: str
) -> KafkaSettings:
    return KafkaSettings(
        bootstrap=f"127.0.0.1:{_port(nodes, 'SASL_SSL')}",
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_username=user,
        sasl_password=password,
        ssl_cafile=certs["ca"],
        request_timeout_ms=10000,
    )


async def round_trip(settings: KafkaSettings, topic: str) -> None:
    """Create a topic, write to it, read it back in a group, commit, read the group's lag."""
    await apply_topics(settings, [TopicSpec(topic, 1, 3_600_000, "k", (), ())])
    async with running_producer(settings) as producer:
        await producer.send_and_wait(topic, b"secured", key=b"k")
    consumer = make_consumer(settings, topic, group_id=f"{topic}-group")
    await consumer.start()
    try:
        got: list[bytes | None] = []

        async def read() -> bool:  # the group's first join may take a while on a busy machine
            batches = await consumer.getmany(timeout_ms=1000)
            got.extend(r.value for batch in batches.values() for r in batch)
            return bool(got)

        await eventually(read, timeout_s=60, what="the record, read back")
        assert got == [b"secured"]
        await consumer.commit()
    finally:
        await consumer.stop()
    async with lag_reader(settings) as lags:
        assert await lags.lag(topic, f"{topic}-group") == 0


async def test_sasl_plain_over_tls(secured: tuple[apache_kafka.Running, dict[str, Path]]) -> None:
    nodes, certs = secured
    await round_trip(
        sasl_settings(nodes, certs, "PLAIN", "alice", PLAIN_USERS["alice"]), "sec.plain"
    )


async def test_sasl_scram_sha_512_over_tls(
    secured: tuple[apache_kafka.Running, dict[str, Path]],
) -> None:
    nodes, certs = secured
    user, password = SCRAM_USER
    await round_trip(sasl_settings(nodes, certs, "SCRAM-SHA-512", user, password), "sec.scram")


async def test_mutual_tls(secured: tuple[apache_kafka.Running, dict[str, Path]]) -> None:
    nodes, certs = secured
    settings = KafkaSettings(
        bootstrap=f"127.0.0.1:{_port(nodes, 'MTLS')}",
        security_protocol="SSL",
        ssl_cafile=certs["ca"],
        ssl_certfile=certs["client_cert"],
        ssl_keyfile=certs["client_key"],
    )
    await round_trip(settings, "sec.mtls")


async def test_a_wrong_password_is_refused(
    secured: tuple[apache_kafka.Running, dict[str, Path]],
) -> None:
    nodes, certs = secured
    user, _ = SCRAM_USER
    settings = sasl_settings(nodes, certs, "SCRAM-SHA-512", user, "not-the-password")
    producer = make_producer(settings)
    try:
        # aiokafka logs the broker's SaslAuthenticationFailed and raises "unable to bootstrap";
        # the same settings with the right password connect (the SCRAM test above).
        with pytest.raises(KafkaError):
            await producer.start()
    finally:
        await producer.stop()
