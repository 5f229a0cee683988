"""The semantic cache's labelled pairs (`tests/data/semantic_pairs.jsonl`, measured by
`loadtest/bench_semantic.py`): well-formed, both labels and every kind present, no pair
twice, and every pair that differs by a negation, a number, a unit or an antonym refused by
the lexical guard, whatever its embedding score; and the benchmark's arithmetic."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from aibroker.rules.semantic import conflict
from loadtest.bench_semantic import Scored, choose, measure

pytestmark = pytest.mark.unit

PAIRS = Path(__file__).resolve().parents[1] / "data" / "semantic_pairs.jsonl"
KINDS = {"paraphrase", "negation", "number", "entity", "unit", "antonym", "unrelated"}
GUARDED = ("negation", "number", "unit", "antonym")
"""The kinds the guard is for: a pair of these it lets through is a bug in the guard."""


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in PAIRS.read_text().splitlines()]


def test_every_line_is_a_labelled_pair(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        assert set(row) == {"a", "b", "same", "kind"}, row
        for side in ("a", "b"):
            assert isinstance(row[side], str), row
            assert row[side].strip(), row
        assert row["a"] != row["b"], row
        assert row["kind"] in KINDS, row
        assert row["same"] is (row["kind"] == "paraphrase"), row


def test_both_labels_and_every_kind_are_there(rows: list[dict[str, Any]]) -> None:
    kinds = Counter(row["kind"] for row in rows)
    assert set(kinds) == KINDS
    assert kinds["paraphrase"] >= 150
    assert sum(kinds[k] for k in KINDS - {"paraphrase", "unrelated"}) >= 150
    assert min(kinds.values()) >= 20


def test_no_pair_is_there_twice(rows: list[dict[str, Any]]) -> None:
    pairs = Counter(frozenset(" ".join(row[s].lower().split()) for s in "ab") for row in rows)
    assert [sorted(p) for p, n in pairs.items() if n > 1] == []


def test_the_guard_refuses_every_guarded_hard_negative(rows: list[dict[str, Any]]) -> None:
    passed = [
        (r["a"], r["b"]) for r in rows if r["kind"] in GUARDED and not conflict(r["a"], r["b"])
    ]
    assert passed == []


def test_precision_and_hit_rate_are_counted_over_the_right_pairs() -> None:
    scored = [
        Scored("paraphrase", True, 0.95, None),
        Scored("paraphrase", True, 0.90, "number"),  # refused by the guard: a lost hit
        Scored("paraphrase", True, 0.70, None),  # under the threshold
        Scored("number", False, 0.97, "number"),  # refused: no wrong match with the guard
        Scored("entity", False, 0.88, None),  # a wrong match either way
    ]
    bare, guarded = measure(scored, 0.85, guarded=False), measure(scored, 0.85, guarded=True)
    assert (bare["matched"], bare["precision"], bare["hit_rate"]) == (4, 0.5, 2 / 3)
    assert (guarded["matched"], guarded["precision"], guarded["hit_rate"]) == (2, 0.5, 1 / 3)
    assert guarded["wrong"]["entity"] == 1
    assert guarded["wrong"]["number"] == 0
    rows = [
        {"threshold": 0.8, "guard": True, "precision": 0.97, "hit_rate": 0.9},
        {"threshold": 0.85, "guard": True, "precision": 0.99, "hit_rate": 0.7},
        {"threshold": 0.9, "guard": True, "precision": 1.0, "hit_rate": 0.7},
        {"threshold": 0.8, "guard": False, "precision": 0.99, "hit_rate": 0.95},
    ]
    assert choose(rows, 0.98) == 0.9  # the best hit rate that is precise enough; ties: higher
    assert choose(rows, 1.01) is None
