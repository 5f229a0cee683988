"""The ports of one `aibroker dev` stack: the ingress's, the mock provider's and each child's
metrics port, reserved (`reservations.py`) so that stacks started together never share one.

A port the user set (`AIBROKER_INGRESS_PORT`, `AIBROKER_DEV_MOCK_PORT`) is taken as set, or the
stack refuses to start, naming who has it; an unset one is the first free port from its default
(8080, 8090), and the metrics ports are the first free ones from 9100.
"""

from __future__ import annotations

from dataclasses import dataclass

from aibroker.devstack.reservations import PortBook, PortTaken
from aibroker.settings import Settings

METRICS_BASE_PORT = 9100
"""Each child serves /metrics (and /health/live) on its own port, the first free ones from here."""
MOCK_HOST = "127.0.0.1"
"""Where the dev stack's mock provider listens (`loadtest.mock_provider --host`)."""


@dataclass(frozen=True)
class DevPorts:
    ingress: int
    mock: int | None
    """None when the stack runs no mock provider."""
    metrics: dict[str, int]
    """Each child service's metrics port, by the service's name."""


def reserve_dev_ports(settings: Settings, services: list[str], book: PortBook) -> DevPorts:
    """Every port the stack's children will bind, reserved in `book`; PortTaken naming each
    port the user set that is not to be had."""
    refused: list[str] = []

    def port(base: int, explicit: bool, what: str, variable: str, host: str) -> int:
        try:
            if explicit:
                return book.exact(base, f"{what}, {variable}", host)
            return book.first_free(base, what, host)
        except PortTaken as exc:
            refused.append(str(exc))
            return 0

    ingress = port(
        settings.ingress.port,
        "port" in settings.ingress.model_fields_set,
        "the ingress",
        "AIBROKER_INGRESS_PORT",
        settings.ingress.host,
    )
    mock = (
        port(
            settings.dev.mock_port,
            "mock_port" in settings.dev.model_fields_set,
            "the mock provider",
            "AIBROKER_DEV_MOCK_PORT",
            MOCK_HOST,
        )
        if settings.dev.mock_provider
        else None
    )
    if refused:
        raise PortTaken("; ".join(refused))
    metrics = {
        name: book.first_free(METRICS_BASE_PORT, f"{name} metrics", settings.metrics.host)
        for name in services
    }
    return DevPorts(ingress, mock, metrics)
