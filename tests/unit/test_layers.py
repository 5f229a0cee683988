"""The layers the folders show, held: a module imports only its own layer and the ones below
(`aibroker/__init__.py` draws them). Every import counts, a lazy one inside a function too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

# Lowest first. A module may import its own layer and any layer with a lower rank; `kafka`
# and `stores` share a rank and may not import each other.
RANKS: dict[str, int] = {
    "schemas": 0,
    "topics.catalog": 1,
    "aibroker.settings": 1,  # imports nothing of ours: plain typed values
    "aibroker": 2,  # the top level: errors, ids, limits, prices, routes, netguard
    "aibroker.telemetry": 3,
    "aibroker.kafka": 4,
    "aibroker.stores": 4,
    "aibroker.runtime": 5,
    "aibroker.control": 5,  # the control plane as a log: the config topic and its Redis view
    "aibroker.cache_hits": 5,  # a response-cache hit recorded: ingress and dispatcher share it
    "topics": 5,  # `topics apply` and the chart: tools over the Kafka clients
    "aibroker.devstack": 6,
    # The services: one package per `aibroker <command>`.
    "ingress": 7,
    "dispatcher": 7,
    "consumers.results": 7,
    "consumers.webhooks": 7,
    "consumers.batches": 7,
    "consumers.rag": 7,  # the retrieval worker: it owns the vector store
    "consumers.pool": 7,  # the pools' runtime: handler, engine port, micro-batcher
    "consumers": 7,  # what the chat translations share (`chat_parts`)
    "consumers.providers": 8,  # engines: they implement the pool's engine port
    "consumers.local": 8,
    "consumers.pool.main": 9,  # `aibroker consumer <pool>`: picks the engines
    "consumers.offload": 9,  # offload pools: the providers' batch APIs, in their wire formats
    "aibroker.batch_client": 7,  # a client of the API, beside the services
    "aibroker.cli": 10,  # starts every service, imported lazily
    "aibroker.__main__": 11,
    "loadtest": 12,
}
SERVICES = {
    "ingress",
    "dispatcher",
    "consumers.results",
    "consumers.webhooks",
    "consumers.batches",
    "consumers.rag",
}
"""Processes of their own: nothing but the CLI (and the load tests) imports one of them."""


def layer(module: str) -> str:
    """The longest entry of RANKS that `module` is, or lies in."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in RANKS:
            return name
    raise KeyError(module)


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from aibroker.telemetry import metrics` imports the module `…telemetry.metrics`.
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    return {name for name in found if name.split(".")[0] in {n.split(".")[0] for n in RANKS}}


def allowed(importer: str, imported: str) -> bool:
    mine, theirs = layer(importer), layer(imported)
    if mine == theirs:
        return True
    if theirs in SERVICES and RANKS[mine] < RANKS["aibroker.cli"]:
        return False
    return RANKS[theirs] < RANKS[mine]


def violations(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for name in sorted(imports(path)):
            if not allowed(module, name):
                found.append(f"{module} imports {name} ({layer(module)} ⟶ {layer(name)})")
    return found


@pytest.mark.parametrize("package", ["schemas", "topics", "aibroker", "ingress", "dispatcher"])
def test_no_module_imports_a_layer_above_its_own(package: str) -> None:
    assert violations(package) == []


def test_services_do_not_import_each_other() -> None:
    assert violations("consumers") == []


def test_every_package_has_a_layer() -> None:
    for path in ROOT.glob("consumers/**/__init__.py"):
        package = ".".join(path.parent.relative_to(ROOT).parts)
        assert layer(package), package


def test_the_rule_can_fail() -> None:
    assert not allowed("aibroker.stores.quota", "aibroker.kafka.publisher")
    assert not allowed("aibroker.kafka.dlq", "aibroker.stores.results")
    assert not allowed("aibroker.routes", "aibroker.telemetry.metrics")
    assert not allowed("ingress.api", "consumers.webhooks.deliverer")
    assert not allowed("schemas.envelopes", "aibroker.errors")
    assert not allowed("aibroker.settings.kafka", "aibroker.routes")
    assert not allowed("consumers.results.sink", "consumers.webhooks.deliverer")
    assert not allowed("consumers.pool.handler", "consumers.providers.openai.lean")
    assert not allowed("consumers.providers.openai.lean", "consumers.local.vllm.wire")
    assert not allowed("consumers.local.embeddings.engine", "ingress.submission")
    assert not allowed("consumers.providers.anthropic.wire", "dispatcher.policy")
    assert allowed("consumers.providers.anthropic.wire", "consumers.chat_parts")
    assert allowed("consumers.local.ocr.engine", "consumers.pool.batcher")
    assert allowed("consumers.pool.main", "consumers.providers.gemini.sdk")
    assert allowed("aibroker.runtime.worker", "aibroker.kafka.producer")
    assert allowed("aibroker.cli", "dispatcher.main")
    assert allowed("aibroker.cli", "consumers.results.sink")
