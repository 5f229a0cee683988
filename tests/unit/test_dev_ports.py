"""The dev stack's ports: reserved so that two stacks allocating in the same instant get none in
common, a port the user set honoured or refused naming who has it (this test's own process holds
one), and every service's address and metrics port in the banner; a crash-looping child is
reported with the end of its log."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aibroker.devstack.banner import Keys, banner
from aibroker.devstack.dev import listed
from aibroker.devstack.dev_ports import METRICS_BASE_PORT, DevPorts, reserve_dev_ports
from aibroker.devstack.ports import holder, is_free
from aibroker.devstack.reservations import PortBook, PortTaken
from aibroker.devstack.supervisor import ChildSpec, crash_loop_report
from aibroker.settings import (
    DevSettings,
    IngressSettings,
    KafkaSettings,
    MetricsSettings,
    RedisSettings,
    Settings,
)

pytestmark = pytest.mark.unit

SERVICES = ["ingress", "dispatcher", "consumer-external", "results", "webhooks", "batches"]


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def books(tmp_path: Path) -> Iterator[list[PortBook]]:
    """Two stacks' books on one reservations directory, as two checkouts on one machine."""
    made = [PortBook(tmp_path / "ports"), PortBook(tmp_path / "ports")]
    yield made
    for book in made:
        book.release()


def unset_ports() -> Settings:
    """The dev defaults, as if no port were set (whatever this test's environment says)."""
    return Settings(
        ingress=IngressSettings.model_construct(set()),
        dev=DevSettings.model_construct(set()),
        metrics=MetricsSettings.model_construct(set()),
    )


def all_ports(ports: DevPorts) -> set[int]:
    return {ports.ingress, *([ports.mock] if ports.mock else []), *ports.metrics.values()}


def test_two_stacks_reserving_in_the_same_instant_share_no_port(books: list[PortBook]) -> None:
    start = threading.Barrier(len(books))
    got: list[DevPorts] = []

    def allocate(book: PortBook) -> None:
        start.wait()
        got.append(reserve_dev_ports(unset_ports(), SERVICES, book))

    threads = [threading.Thread(target=allocate, args=(b,)) for b in books]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first, second = got
    assert len(all_ports(first)) == len(all_ports(second)) == len(SERVICES) + 2
    assert not all_ports(first) & all_ports(second)
    assert min([*first.metrics.values(), *second.metrics.values()]) >= METRICS_BASE_PORT


def test_a_port_set_by_the_user_and_taken_is_refused_naming_its_holder(
    listening: int, books: list[PortBook]
) -> None:
    settings = Settings(ingress=IngressSettings(port=listening))
    with pytest.raises(PortTaken) as refused:
        reserve_dev_ports(settings, SERVICES, books[0])
    assert str(refused.value).startswith(
        f"port {listening} (the ingress, AIBROKER_INGRESS_PORT) is taken by pid {os.getpid()} "
    )


def test_a_port_set_by_the_user_and_reserved_by_another_stack_is_refused(
    books: list[PortBook],
) -> None:
    mine, other = books
    port = other.any_free("the mock provider")
    settings = Settings(dev=DevSettings(mock_port=port))
    with pytest.raises(PortTaken) as refused:
        reserve_dev_ports(settings, SERVICES, mine)
    assert str(refused.value) == (
        f"port {port} (the mock provider, AIBROKER_DEV_MOCK_PORT) is reserved by another "
        f"stack (pid {os.getpid()}: the mock provider)"
    )


def test_an_unset_port_steps_over_listening_and_reserved_ones(
    listening: int, books: list[PortBook]
) -> None:
    mine, other = books
    reserved = other.first_free(listening + 1, "another stack's ingress")
    settings = Settings(ingress=IngressSettings.model_construct(set(), port=listening))
    assert "port" not in settings.ingress.model_fields_set
    ports = reserve_dev_ports(settings, SERVICES, mine)
    assert ports.ingress > reserved > listening
    assert holder(listening) is not None
    assert holder(listening).startswith(f"pid {os.getpid()} ")  # type: ignore[union-attr]


def test_a_released_port_can_be_reserved_again(books: list[PortBook], tmp_path: Path) -> None:
    mine, other = books
    port = mine.any_free("x")
    with pytest.raises(PortTaken):
        other.exact(port, "y")
    assert mine.held == {port: "x"}
    mine.release()
    assert not list((tmp_path / "ports").iterdir())  # nothing left behind
    assert other.exact(port, "y") == port
    assert is_free(port)


def test_the_banner_lists_every_service_with_its_address_and_metrics(tmp_path: Path) -> None:
    settings = Settings(
        kafka=KafkaSettings(bootstrap="127.0.0.1:39001", engine="tansu"),
        redis=RedisSettings(url="redis://127.0.0.1:39002/0"),
        ingress=IngressSettings(port=8081),
    )
    metrics = {name: 9200 + i for i, name in enumerate(SERVICES)}
    rows = listed(settings, DevPorts(ingress=8081, mock=8091, metrics=metrics))
    text = banner("http://127.0.0.1:8081", Keys("aib_k", "aib_a", "whsec_s"), "m", tmp_path, rows)
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line[:4] == "    "}
    assert lines["ingress"] == ["http://127.0.0.1:8081", "http://127.0.0.1:9200/metrics"]
    for name in SERVICES[1:]:
        assert lines[name] == [f"http://127.0.0.1:{metrics[name]}/metrics"], name
    assert lines["mock-provider"] == ["http://127.0.0.1:8091"]
    assert lines["kafka"] == ["127.0.0.1:39001", "(tansu)"]
    assert lines["redis"] == ["redis://127.0.0.1:39002/0"]
    assert "curl http://127.0.0.1:8081/v1/chat/completions" in text
    assert "console:              http://127.0.0.1:8081/console/" in text


def test_a_crash_loop_is_reported_with_the_end_of_its_log(tmp_path: Path) -> None:
    log = tmp_path / "dispatcher.log"
    log.write_text("".join(f"line {i}\n" for i in range(30)) + "OSError: Address already in use\n")
    spec = ChildSpec("dispatcher", ["x"], {}, log)
    text = crash_loop_report(spec, 3, "exit code 1")
    assert (
        text.splitlines()[0]
        == "dispatcher is crash-looping: it died 3 times in a row (exit code 1)."
    )
    assert text.splitlines()[-1] == "  OSError: Address already in use"
    assert "line 17" not in text  # only the end
