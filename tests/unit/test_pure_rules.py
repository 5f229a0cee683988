"""The rules are pure: `aibroker/rules/` and the dispatcher's decisions (`policy`, `routing`)
import no client of Redis or Kafka and no store; the stores import the rules, not the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
IO = ("redis", "aiokafka", "httpx", "aibroker.stores", "aibroker.kafka", "aibroker.runtime")
PURE = [
    *sorted(p.relative_to(ROOT) for p in (ROOT / "aibroker" / "rules").glob("*.py")),
    Path("dispatcher/policy.py"),
    Path("dispatcher/routing.py"),
]


def io_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        found += [n for n in names if any(n == m or n.startswith(f"{m}.") for m in IO)]
    return found


def test_there_are_rules() -> None:
    assert len(PURE) >= 5


@pytest.mark.parametrize("path", PURE, ids=str)
def test_a_rule_imports_no_io(path: Path) -> None:
    assert io_imports(ROOT / path) == []


def test_the_check_can_fail() -> None:
    assert io_imports(ROOT / "dispatcher" / "service.py")  # the handlers talk to Redis and Kafka
