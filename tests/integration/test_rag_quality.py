"""Retrieval quality, measured and held: the labelled set (`tests/data/retrieval_set.jsonl`)
is what its generator writes and is well formed; embedded by all-MiniLM-L6-v2 (the embeddings
pool's model, from its wheel, offline) and searched in Qdrant's local mode through
`aibroker.rag.index`, recall@5 and MRR@10 of dense and hybrid search stay above floors set a
little under what `loadtest/bench_rag_quality.py` measured (docs/performance/rag.md)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from typing import Any

import pytest

from loadtest.retrieval_set import SET, ambiguous, build

pytestmark = pytest.mark.integration

FLOORS = {
    # mode: {kind: (recall@5, MRR@10)}; measured 0.971 / 0.888 and 0.999 / 0.953 in all.
    "dense": {"all": (0.95, 0.86), "near_duplicate": (0.94, 0.83)},
    "hybrid": {"all": (0.98, 0.93), "near_duplicate": (0.98, 0.93)},
}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SET.read_text().splitlines()]


def test_the_committed_set_is_what_the_generator_writes(rows: list[dict[str, Any]]) -> None:
    assert rows == build()


def test_the_set_is_well_formed_and_large_enough(rows: list[dict[str, Any]]) -> None:
    passages = {r["id"]: r for r in rows if r["type"] == "passage"}
    queries = [r for r in rows if r["type"] == "query"]
    assert len(passages) >= 300
    assert len(queries) >= 300
    assert len({p["text"] for p in passages.values()}) == len(passages)
    assert len(set(Counter(p["topic"] for p in passages.values()))) >= 12
    for query in queries:
        assert query["relevant"], query
        assert set(query["relevant"]) <= set(passages), query
        assert query["kind"] in {"near_duplicate", "lexical", "paraphrase", "multi"}, query
    # Near-duplicates: groups larger than the five results recall@5 looks at.
    groups = Counter(p["group"] for p in passages.values())
    assert sum(1 for n in groups.values() if n >= 6) >= 20
    near = [q for q in queries if q["kind"] == "near_duplicate"]
    assert len(near) >= 200
    assert all(groups[passages[q["relevant"][0]]["group"]] >= 2 for q in near)


def test_no_generated_query_has_an_answer_it_is_not_labelled_with(
    rows: list[dict[str, Any]],
) -> None:
    passages = [r for r in rows if r["type"] == "passage"]
    generated = [r for r in rows if r["type"] == "query" and r["kind"] != "paraphrase"]
    assert not [q for q in generated if ambiguous(q, passages)]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the model embeds ~750 texts on CPU; minutes on a loaded machine
@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("qdrant_client") is None,
    reason="needs the [embeddings] extra",
)
def test_recall_and_mrr_stay_above_their_floors() -> None:
    from loadtest.bench_rag_quality import measure

    report = measure("cpu")
    for mode, floors in FLOORS.items():
        for kind, (recall, mrr) in floors.items():
            got = report[mode][kind]
            assert got["recall"] >= recall, (mode, kind, got)
            assert got["mrr"] >= mrr, (mode, kind, got)
    # Hybrid measures better where names and numbers decide (its reason to exist).
    for kind in ("all", "near_duplicate", "lexical"):
        assert report["hybrid"][kind]["mrr"] > report["dense"][kind]["mrr"], kind
