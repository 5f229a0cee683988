"""Retrieval quality over a labelled set, as the docs report it: recall@k (the share of a
query's relevant passages found in its first k results) and mean reciprocal rank (1 / the
rank of the first relevant result, 0 when none is), each averaged over the queries."""

from __future__ import annotations

from collections.abc import Collection, Sequence

Run = tuple[Sequence[str], Collection[str]]
"""One query: the ids it ranked, best first, and the ids that are relevant to it."""


def recall_at_k(runs: Sequence[Run], k: int) -> float:
    """Mean over the queries of |relevant ∩ first k| / |relevant|."""
    if k < 1:
        raise ValueError("k must be at least 1")
    scores = []
    for ranked, relevant in _checked(runs):
        found = set(ranked[:k]) & set(relevant)
        scores.append(len(found) / len(relevant))
    return sum(scores) / len(scores)


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str]) -> float:
    """1 / the rank (from 1) of the first relevant id in `ranked`; 0 when none is there."""
    for rank, item in enumerate(ranked, 1):
        if item in relevant:
            return 1 / rank
    return 0.0


def mrr(runs: Sequence[Run]) -> float:
    """Mean reciprocal rank over the queries."""
    checked = _checked(runs)
    return sum(reciprocal_rank(ranked, relevant) for ranked, relevant in checked) / len(checked)


def _checked(runs: Sequence[Run]) -> Sequence[Run]:
    if not runs:
        raise ValueError("no queries to measure")
    if any(not relevant for _, relevant in runs):
        raise ValueError("every query needs at least one relevant id")
    return runs
