"""Precision, recall and F2 of the PII recognizers per entity type, on the labelled texts of
`tests/data/pii_samples.jsonl` (positives with their spans, and hard negatives: order numbers
that fail Luhn, IBANs with a wrong checksum, version strings, UUIDs, hashes, dates).

    python -m loadtest.bench_pii [--presidio] [--json]

`--presidio` also scores Microsoft Presidio's own recognizers (presidio-analyzer; run with
an interpreter that has it, e.g. `PYTHONPATH=. /tmp/venv-presidio/bin/python -m ...`). Its
`AnalyzerEngine` insists on a spaCy model, which the registry these machines reach does not
serve, so each recognizer is called directly (`analyze(text, entities, None)`), as the
engine would without its NLP step.

A predicted span counts when it overlaps a labelled span of the same type (redaction hides
the value either way); a labelled span no prediction overlaps is a miss. F2 weighs recall
twice: a missed card number leaks to the provider, a redacted order number costs a worse
answer, so recall is what the guard is tuned for (as Presidio's evaluation guidance does).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aibroker.guards.pii import Entity, find

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "pii_samples.jsonl"
Span = tuple[int, int, str]
Detector = Callable[[str], list[Span]]


def load(path: Path = SAMPLES) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ours(text: str) -> list[Span]:
    return [(f.start, f.end, f.entity.value) for f in find(text)]


PRESIDIO_TYPES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
    "US_SSN": "US_SSN",
    "UK_NINO": "UK_NINO",
}
"""Presidio's names for our types; it has no API-key or secret recognizer."""


def presidio() -> Detector:  # pragma: no cover - needs presidio-analyzer
    from presidio_analyzer import predefined_recognizers as p  # type: ignore[import-not-found]

    recognizers = [
        p.EmailRecognizer(),
        p.PhoneRecognizer(supported_regions=("US", "UK", "DE", "FR", "CN")),
        p.CreditCardRecognizer(),
        p.IbanRecognizer(),
        p.IpRecognizer(),
        p.UsSsnRecognizer(),
        p.UkNinoRecognizer(),
    ]

    def detect(text: str) -> list[Span]:
        found: list[Span] = []
        for r in recognizers:
            for hit in r.analyze(text, r.supported_entities, None):
                # The engine's default threshold is 0: every hit counts, as it would there.
                if hit.entity_type in PRESIDIO_TYPES:
                    found.append((hit.start, hit.end, PRESIDIO_TYPES[hit.entity_type]))
        return found

    return detect


def score(samples: list[dict[str, Any]], detect: Detector) -> dict[str, dict[str, float]]:
    """Per type: tp, fp, fn, precision, recall, f2; and `_all` over every type."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for sample in samples:
        gold = [(s["start"], s["end"], s["type"]) for s in sample["spans"]]
        found = detect(sample["text"])
        for start, end, kind in found:
            hit = any(k == kind and start < e and s < end for s, e, k in gold)
            counts[kind][0 if hit else 1] += 1
        for start, end, kind in gold:
            if not any(k == kind and s < end and start < e for s, e, k in found):
                counts[kind][2] += 1
    counts["_all"] = [sum(c[i] for k, c in counts.items() if k != "_all") for i in range(3)]
    return {kind: _rates(*c) for kind, c in sorted(counts.items())}


def _rates(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f2 = 5 * precision * recall / (4 * precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f2": f2}


def latency_us(samples: list[dict[str, Any]], detect: Detector, rounds: int = 5) -> float:
    """Mean time to scan one sample text, in microseconds."""
    texts = [s["text"] for s in samples]
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            detect(text)
    return (time.perf_counter() - start) / (rounds * len(texts)) * 1e6


def table(name: str, scores: dict[str, dict[str, float]], micros: float) -> str:
    lines = [
        f"{name} ({micros:.0f} µs a text)",
        "| type | tp | fp | fn | precision | recall | F2 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, s in scores.items():
        lines.append(
            f"| {kind} | {s['tp']:.0f} | {s['fp']:.0f} | {s['fn']:.0f} | {s['precision']:.3f} "
            f"| {s['recall']:.3f} | {s['f2']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presidio", action="store_true", help="also score Presidio")
    parser.add_argument("--json", action="store_true", help="print JSON, not tables")
    args = parser.parse_args()
    samples = load()
    detectors: dict[str, Detector] = {"aibroker": ours}
    if args.presidio:
        detectors["presidio (pattern recognizers)"] = presidio()
    scores = {name: score(samples, d) for name, d in detectors.items()}
    micros = {name: latency_us(samples, d) for name, d in detectors.items()}
    if args.json:
        report = {name: {"scores": scores[name], "latency_us": micros[name]} for name in scores}
        print(json.dumps(report, indent=2))
        return
    print(f"{len(samples)} texts, {sum(len(s['spans']) for s in samples)} labelled spans")
    for name in detectors:
        print(table(name, scores[name], micros[name]), end="\n\n")
    missing = {e.value for e in Entity} - {s["type"] for x in samples for s in x["spans"]}
    if missing:
        print("types with no labelled sample:", ", ".join(sorted(missing)))


if __name__ == "__main__":
    main()
