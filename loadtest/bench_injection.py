"""`python -m loadtest.bench_injection`: the prompt-injection guard's precision and recall on the
held-out part of `tests/data/injection_samples.jsonl` (the heuristics alone, the shipped head
alone, both as the guard runs them), and what each part costs a text: the heuristics, the
embedding (the pool's model, called directly on this machine's CPU) and the head's dot
product. The head was fitted on the other part only (`aibroker.guards.train_injection`)."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

from aibroker.guards.injection import find
from aibroker.guards.injection_head import load_head
from aibroker.guards.train_injection import Sample, confusion, embed, samples, scores, split
from loadtest.doc_tables import doc_page, update_docs


def per_text_us(run: Callable[[], object], n: int) -> float:
    """The median of `n` timings of `run`, in microseconds."""
    timings = []
    for _ in range(n):
        began = time.perf_counter()
        run()
        timings.append(time.perf_counter() - began)
    return statistics.median(timings) * 1e6


def table(held: list[Sample], heuristics: list[bool], head: list[bool], costs: list[str]) -> str:
    both = [h or c for h, c in zip(heuristics, head, strict=True)]
    rows = [
        "| held-out part | precision | recall | cost a text |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, predicted, cost in (
        ("heuristics (no model)", heuristics, costs[0]),
        ("classifier (MiniLM + linear head)", head, costs[1]),
        ("both, as the guard runs them", both, costs[2]),
    ):
        s = scores(confusion(predicted, held))
        rows.append(f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {cost} |")
    attacks = sum(s.label for s in held)
    rows.append(f"\n{len(held)} held-out texts: {attacks} attacks, {len(held) - attacks} benign.")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=50, help="timings of each part")
    parser.add_argument("--update-docs", type=doc_page("bench-injection"), metavar="PAGE")
    args = parser.parse_args(argv)
    head = load_head()
    _, held = split(samples())
    vectors = [[float(x) for x in v] for v in embed([s.text for s in held])]
    heuristics = [bool(find(s.text)) for s in held]
    flagged = [head.flags(v) for v in vectors]
    texts = [s.text for s in held]
    find_us = statistics.median(per_text_us(partial(find, t), args.repeat) for t in texts)
    head_us = per_text_us(lambda: head.score(vectors[0]), args.repeat)
    one_ms = _embed_one_ms(texts[0], args.repeat)
    costs = [
        f"{find_us:.0f} µs",
        f"{one_ms:.1f} ms embedding + {head_us:.0f} µs head",
        f"{find_us:.0f} µs + {one_ms:.1f} ms + {head_us:.0f} µs",
    ]
    text = table(held, heuristics, flagged, costs)
    print(text)
    if args.update_docs:
        update_docs(args.update_docs, text, marker="bench-injection")


def _embed_one_ms(text: str, n: int) -> float:
    """One text through the loaded model, as the pool runs it for a request alone."""
    from consumers.local.embeddings.engine import load_model

    model = load_model("all-minilm-l6-v2", "cpu")
    model.encode([text], convert_to_numpy=True, show_progress_bar=False)  # warm
    return (
        per_text_us(lambda: model.encode([text], convert_to_numpy=True, show_progress_bar=False), n)
        / 1000
    )


if __name__ == "__main__":
    main()
