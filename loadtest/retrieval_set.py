"""The labelled retrieval set of `tests/data/retrieval_set.jsonl`, generated: passages on
twelve topics (towns, expense rules, software releases, species, recipes, devices, treaties,
exoplanets, metro lines, runbooks, clubs, and hand-written general knowledge), and queries with
the ids of the passages that answer them.

    python -m loadtest.retrieval_set [--out tests/data/retrieval_set.jsonl]

Most generated topics come in groups of near-duplicates: passages on the same subject, in the
same words, that differ in one fact and in what they are about (two releases of one library,
one rule for two departments), and a query that names the difference must find the right
one. The names are invented, so the model cannot answer from what it learnt. The output is
the same on every run (a seeded `random.Random`); a test holds the committed file to it.

A line is a passage, `{"type": "passage", "id", "topic", "group", "text"}`, or a query,
`{"type": "query", "id", "text", "relevant": [passage ids], "kind"}`; the kinds:
`near_duplicate` (its group has twins), `lexical` (it names the passage's entity),
`paraphrase` (its words are mostly not the passage's), `multi` (two passages answer it).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.retrieval_general import GENERAL
from loadtest.retrieval_topics import Clubs, Exoplanets, Metro, Species, Topic, Towns, Treaties
from loadtest.retrieval_work import Devices, Expenses, Recipes, Releases, Runbooks

SET = Path(__file__).resolve().parents[1] / "tests" / "data" / "retrieval_set.jsonl"
SEED = 29
TOPICS: list[Topic] = [
    Towns(), Expenses(), Releases(), Species(), Recipes(), Devices(),
    Treaties(), Exoplanets(), Metro(), Runbooks(), Clubs(),
]  # fmt: skip
"""In the order they draw from the seeded generator: a new one goes last."""


@dataclass
class Builder:
    rng: random.Random
    passages: list[dict[str, Any]] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    used: dict[str, list[Any]] = field(default_factory=dict)

    def passage(self, topic: str, group: str, text: str) -> str:
        pid = f"p{len(self.passages) + 1:03d}"
        self.passages.append(
            {"type": "passage", "id": pid, "topic": topic, "group": group, "text": text}
        )
        return pid

    def query(self, text: str, relevant: list[str], kind: str) -> None:
        qid = f"q{len(self.queries) + 1:03d}"
        self.queries.append(
            {"type": "query", "id": qid, "text": text, "relevant": relevant, "kind": kind}
        )

    def fresh(self, key: str, options: list[Any]) -> Any:
        """One of `options` not drawn before under `key` while any is left (then any): the
        groups of a topic are about different things, so they are not near-duplicates too."""
        used = self.used.setdefault(key, [])
        left = [option for option in options if option not in used] or options
        value = self.rng.choice(left)
        used.append(value)
        return value

    def name(self, make: Callable[[random.Random], str]) -> str:
        """A fresh invented name: never one given before in this set."""
        while True:
            value = make(self.rng)
            if value not in self.names:
                self.names.add(value)
                return value


def _topic(builder: Builder, topic: Topic) -> None:
    for g in range(topic.groups + topic.solos):
        group = f"{topic.name}-{g + 1}"
        shared = topic.shared(builder)
        twins = topic.twins if g < topic.groups else 1
        records = [topic.record(builder, shared) for _ in range(twins)]
        ids = [builder.passage(topic.name, group, topic.text(r, builder.rng)) for r in records]
        for pid, record in zip(ids, records, strict=True):
            for text, kind in topic.questions(record, builder.rng, len(records) > 1):
                builder.query(text, [pid], kind)
        spanning = topic.spanning(records, ids, builder) if len(ids) > 1 else []
        for text, relevant in spanning:
            builder.query(text, relevant, "multi")


_WORD = re.compile(r"\w+")
COMMON = set(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "is",
        "it",
        "its",
        "by",
        "with",
        "what",
        "which",
        "who",
        "how",
        "when",
        "does",
        "do",
    ]
)


def _terms(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in COMMON}


def ambiguous(query: dict[str, Any], passages: list[dict[str, Any]]) -> bool:
    """Whether a passage that is not relevant holds every word the query shares with all the
    relevant ones: then nothing in the words tells them apart, and the label is a guess."""
    relevant = set(query["relevant"])
    texts = {p["id"]: _terms(p["text"]) for p in passages}
    shared = _terms(query["text"]).intersection(*(texts[pid] for pid in relevant))
    return any(shared <= terms for pid, terms in texts.items() if pid not in relevant)


def build(seed: int = SEED) -> list[dict[str, Any]]:
    builder = Builder(random.Random(seed))
    for topic in TOPICS:
        _topic(builder, topic)
    # A generated query another passage answers as well is dropped, not kept as a coin toss.
    builder.queries = [q for q in builder.queries if not ambiguous(q, builder.passages)]
    for n, query in enumerate(builder.queries, 1):
        query["id"] = f"q{n:03d}"
    for text, questions in GENERAL:
        pid = builder.passage("general", f"general-{len(builder.passages) + 1}", text)
        for question in questions:
            builder.query(question, [pid], "paraphrase")
    return builder.passages + builder.queries


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=SET)
    args = parser.parse_args(argv)
    rows = build()
    args.out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    passages = sum(1 for row in rows if row["type"] == "passage")
    print(f"{args.out}: {passages} passages, {len(rows) - passages} queries")


if __name__ == "__main__":
    main()
