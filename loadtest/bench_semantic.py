"""How often the semantic cache answers a paraphrase, and how often it answers wrongly: the
labelled pairs of `tests/data/semantic_pairs.jsonl` embedded by the embeddings pool's model,
matched by cosine at three thresholds, with and without the lexical guard.

    python -m loadtest.bench_semantic [--thresholds 0.80 0.85 0.90] [--device cpu]
        [--update-docs docs/guides/cache.md]

A pair "matches" when the cosine of its two texts is at least the threshold (and, with the
guard, `may_match` agrees). Precision: of the pairs that match, the share labelled `same`;
hit rate: of the `same` pairs, the share that match. The default threshold is the lowest of
the three (the best hit rate) whose precision with the guard is at least `--precision`
(0.98). Each pair stands for one lookup in which the cached prompt is the nearest.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aibroker.rules.semantic import conflict
from loadtest.doc_tables import doc_page, update_docs

PAIRS = Path(__file__).resolve().parents[1] / "tests" / "data" / "semantic_pairs.jsonl"
MODEL = "all-minilm-l6-v2"
KINDS = ("negation", "number", "entity", "unit", "antonym", "unrelated")


@dataclass(frozen=True)
class Scored:
    kind: str
    same: bool
    score: float
    guard: str | None
    """Why the guard refuses the pair, or None."""


def load_pairs(path: Path = PAIRS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def embed(texts: list[str], device: str, forward_batch: int) -> list[list[float]]:
    """The texts' vectors as the embeddings pool computes them: the same model, loaded the
    same way (`load_model`), the same `encode` call; the model's own last module normalises
    them, so a cosine is a dot product."""
    from consumers.local.embeddings.engine import load_model

    model = load_model(MODEL, device)
    vectors = model.encode(
        texts, batch_size=forward_batch, convert_to_numpy=True, show_progress_bar=False
    )
    return [[float(x) for x in v] for v in vectors]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5
    return float(dot / norm)


def score(pairs: list[dict[str, Any]], vectors: dict[str, list[float]]) -> list[Scored]:
    return [
        Scored(
            p["kind"], p["same"], cosine(vectors[p["a"]], vectors[p["b"]]), conflict(p["a"], p["b"])
        )
        for p in pairs
    ]


def measure(scored: list[Scored], threshold: float, guarded: bool) -> dict[str, Any]:
    """Precision, hit rate and the wrong matches by kind at one threshold."""
    matched = [s for s in scored if s.score >= threshold and not (guarded and s.guard)]
    right = sum(s.same for s in matched)
    same = sum(s.same for s in scored)
    wrong = {k: sum(1 for s in matched if s.kind == k) for k in KINDS}
    return {
        "threshold": threshold,
        "guard": guarded,
        "matched": len(matched),
        "precision": right / len(matched) if matched else 1.0,
        "hit_rate": right / same if same else 0.0,
        "wrong": wrong,
    }


def choose(rows: list[dict[str, Any]], floor: float) -> float | None:
    """The guarded threshold with the best hit rate whose precision is at least `floor`."""
    fit = [r for r in rows if r["guard"] and r["precision"] >= floor]
    return max(fit, key=lambda r: (r["hit_rate"], r["threshold"]))["threshold"] if fit else None


def table(
    rows: list[dict[str, Any]], scored: list[Scored], chosen: float | None, floor: float
) -> str:
    counts = {k: sum(1 for s in scored if s.kind == k) for k in KINDS}
    same = sum(s.same for s in scored)
    head = "| threshold | guard | matched | precision | hit rate | " + " | ".join(
        f"wrong: {k} ({counts[k]})" for k in KINDS
    )
    lines = [head + " |", "|" + " --- |" * (5 + len(KINDS))]
    for r in rows:
        mark = " **default**" if r["guard"] and r["threshold"] == chosen else ""
        lines.append(
            f"| {r['threshold']:.2f}{mark} | {'yes' if r['guard'] else 'no'} | {r['matched']} | "
            f"{r['precision']:.3f} | {r['hit_rate']:.3f} | "
            + " | ".join(str(r["wrong"][k]) for k in KINDS)
            + " |"
        )
    refused = sum(1 for s in scored if s.same and s.guard)
    nearest = max((s.score for s in scored if not s.same and not s.guard), default=0.0)
    lines += [
        "",
        f"{len(scored)} labelled pairs, {same} of them paraphrases (`same`); the guard alone "
        f"refuses {refused} of the paraphrases and "
        f"{sum(1 for s in scored if not s.same and s.guard)} of the "
        f"{len(scored) - same} hard negatives and unrelated pairs, whatever the score. The "
        f"highest-scoring different pair it lets through scores {nearest:.3f}.",
    ]
    if chosen is not None:
        lines += [
            "",
            f"**Default threshold: {chosen:.2f}**, the best hit rate of the three whose "
            f"precision with the guard is at least {floor} on this set.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--thresholds", type=float, nargs=3, default=[0.80, 0.85, 0.90])
    parser.add_argument("--precision", type=float, default=0.98)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--forward-batch", type=int, default=16)
    parser.add_argument("--update-docs", type=doc_page("bench-semantic"), metavar="PAGE")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    pairs = load_pairs()
    texts = sorted({p["a"] for p in pairs} | {p["b"] for p in pairs})
    vectors = dict(zip(texts, embed(texts, args.device, args.forward_batch), strict=True))
    embedded = time.perf_counter()
    scored = score(pairs, vectors)
    rows = [measure(scored, t, g) for t in sorted(args.thresholds) for g in (False, True)]
    chosen = choose(rows, args.precision)
    text = table(rows, scored, chosen, args.precision)
    print(text)
    print(f"default threshold (precision >= {args.precision} with the guard): {chosen}")
    print(
        f"{len(texts)} texts embedded in {embedded - began:.1f} s (model load included), "
        f"{time.perf_counter() - began:.1f} s in all"
    )
    if args.update_docs:
        update_docs(args.update_docs, text, marker="bench-semantic")


if __name__ == "__main__":
    main()
