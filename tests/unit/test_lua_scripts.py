"""Every Lua script of the stores is read by its table: the comment above it names each KEYS[i]
and ARGV[i] the script indexes (a variable layout spelled out as a formula, `ARGV[6 + s*4]`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

STORES = Path(__file__).resolve().parents[2] / "aibroker" / "stores"
INDEXED = re.compile(r"\b(KEYS|ARGV)\[([^\]]+)\]")


def scripts(source: str) -> list[tuple[str, str, str]]:
    """(name, Lua body, the comment lines right above it) of each module-level Lua script."""
    lines = source.splitlines()
    found = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)):
            continue
        body = node.value.value
        if not (isinstance(body, str) and "redis.call" in body):
            continue
        above = []
        for line in reversed(lines[: node.lineno - 1]):
            if not line.startswith("#"):
                break
            above.append(line)
        name = ast.unparse(node.targets[0])
        found.append((name, body, "\n".join(reversed(above))))
    return found


def missing(body: str, table: str) -> list[str]:
    """What the script indexes that its table does not name: each literal index, and any
    computed one when the table spells out no formula for that array."""
    gaps = []
    for array, index in sorted(set(INDEXED.findall(body))):
        if index.strip().isdigit():
            if f"{array}[{index.strip()}]" not in table:
                gaps.append(f"{array}[{index}]")
        elif not re.search(rf"{array}\[\d+ *\+", table):
            gaps.append(f"{array}[{index}]")
    return gaps


def all_scripts() -> list[tuple[str, str, str]]:
    return [
        (f"{path.stem}.{name}", body, table)
        for path in sorted(STORES.glob("*.py"))
        for name, body, table in scripts(path.read_text())
    ]


def test_the_stores_have_scripts() -> None:
    assert len(all_scripts()) >= 10


@pytest.mark.parametrize(
    ("name", "body", "table"), [pytest.param(*s, id=s[0]) for s in all_scripts()]
)
def test_every_script_has_a_table_of_its_keys_and_arguments(
    name: str, body: str, table: str
) -> None:
    assert missing(body, table) == [], name


def test_the_check_can_fail() -> None:
    body = "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]); return ARGV[3 + n]"
    assert missing(body, "") == ["ARGV[1]", "ARGV[2]", "ARGV[3 + n]", "KEYS[1]"]
    assert missing(body, "#   KEYS[1] k  ARGV[1] v  ARGV[2] ttl") == ["ARGV[3 + n]"]
    assert missing(body, "#   KEYS[1]  ARGV[1]  ARGV[2]  ARGV[3 + i]: the rest") == []
