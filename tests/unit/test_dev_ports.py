"""The dev stack's ports: a taken one is found and its holder named (this test's own process
holds one), and metrics ports skip taken ones; a crash-looping child is reported with the
end of its log."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from aibroker.devstack.ports import check_free, free_ports, holder, is_free
from aibroker.devstack.supervisor import ChildSpec, crash_loop_report

pytestmark = pytest.mark.unit


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_a_taken_port_names_its_holder(listening: int) -> None:
    assert not is_free(listening)
    assert holder(listening) is not None
    assert holder(listening).startswith(f"pid {os.getpid()} ")  # type: ignore[union-attr]
    [problem] = check_free([(listening, "the ingress")])
    assert problem.startswith(f"port {listening} (the ingress) is taken by pid {os.getpid()}")


def test_free_ports_step_over_taken_ones(listening: int) -> None:
    ports = free_ports(listening, 2)
    assert listening not in ports
    assert all(p > listening for p in ports)
    assert check_free([(ports[0], "x")]) == []


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
