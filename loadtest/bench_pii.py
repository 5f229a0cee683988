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

`--stack tansu|apache` also measures the guards through a running broker, in the same run:
sync requests of tenants whose policy is off, input `redact`, output `redact`, and both with
`restore`, interleaved, their p50 against the `off` tenant's; and streams (the mock writing a
word every `--pace-ms`) with the output guard's window against none: the time to the first
word of content the caller reads. `--update-docs PAGE` writes the tables between its markers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from aibroker.guards.pii import Entity, find
from loadtest.doc_tables import doc_page, update_docs
from loadtest.stack import Stack, bench_stack

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
        "",
        "| type | tp | fp | fn | precision | recall | F2 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, s in scores.items():
        lines.append(
            f"| {kind} | {s['tp']:.0f} | {s['fp']:.0f} | {s['fn']:.0f} | {s['precision']:.3f} "
            f"| {s['recall']:.3f} | {s['f2']:.3f} |"
        )
    return "\n".join(lines)


POLICIES: dict[str, dict[str, Any]] = {
    "off": {},
    "input redact": {"input": {"pii": "redact"}},
    "output redact": {"output": {"pii": "redact"}},
    "input + output redact, restore": {
        "input": {"pii": "redact"},
        "output": {"pii": "redact"},
        "restore": True,
    },
}
PROMPT = (
    "Please write back to jane.roe@example.com about the card 4111 1111 1111 1111 and the IBAN "
    "DE89 3704 0044 0532 0130 00, then call +44 20 7946 0958; keep it short. {tag}"
)


async def _timed(http: httpx.AsyncClient, key: str, body: dict[str, Any]) -> tuple[float, float]:
    """(seconds to the first content the caller reads, seconds to the end) of one call."""
    headers = {"Authorization": f"Bearer {key}"}
    started = time.perf_counter()
    first = None
    if not body.get("stream"):
        answer = await http.post("/v1/chat/completions", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        end = time.perf_counter() - started
        return end, end
    async with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as sse:
        async for line in sse.aiter_lines():
            if first is None and line.startswith("data: {") and _content(json.loads(line[6:])):
                first = time.perf_counter() - started
    end = time.perf_counter() - started
    return first if first is not None else end, end


def _content(chunk: dict[str, Any]) -> str:
    return "".join((c.get("delta") or {}).get("content") or "" for c in chunk.get("choices") or [])


def _chat(model: str, **extra: Any) -> dict[str, Any]:
    prompt = PROMPT.format(tag=uuid.uuid4().hex)  # unique: no response-cache hit
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}


async def through_stack(stack: Stack, rounds: int, streams: int, pace_ms: int) -> dict[str, Any]:
    keys: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        admin = {"Authorization": f"Bearer {stack.admin_key}"}
        for name, policy in POLICIES.items():
            tenant = f"bench-pii-{len(keys)}-{uuid.uuid4().hex[:6]}"
            await http.put(f"/admin/v1/tenants/{tenant}", json={}, headers=admin)
            put = await http.put(f"/admin/v1/guardrails/{tenant}", json=policy, headers=admin)
            assert put.status_code == 200, put.text
            keys[name] = stack.new_key(tenant)
        sync: dict[str, list[float]] = {name: [] for name in keys}
        ttft: dict[str, list[float]] = {"off": [], "output redact": []}
        for i in range(rounds + 5):  # interleaved, so drift hits every policy alike
            for name, key in keys.items():
                _, took = await _timed(http, key, _chat("mock/echo"))
                if i >= 5:  # the first rounds warm the caches and connections
                    sync[name].append(took)
        for _ in range(streams):
            for name in ttft:
                first, _ = await _timed(
                    http, keys[name], _chat(f"mock/pace-{pace_ms}", stream=True)
                )
                ttft[name].append(first)
    p50 = {name: statistics.median(v) * 1000 for name, v in sync.items()}
    t50 = {name: statistics.median(v) * 1000 for name, v in ttft.items()}
    return {"rounds": rounds, "streams": streams, "pace_ms": pace_ms, "p50_ms": p50, "ttft_ms": t50}


def stack_table(report: dict[str, Any], engine: str) -> str:
    p50, ttft = report["p50_ms"], report["ttft_ms"]
    lines = [
        f"Through the broker on {engine}, {report['rounds']} sync chat calls a policy, "
        "interleaved (a 230-character prompt with four values):",
        "",
        "| policy | p50 | added p50 |",
        "| --- | ---: | ---: |",
    ]
    for name, ms in p50.items():
        lines.append(f"| {name} | {ms:.1f} ms | {ms - p50['off']:+.1f} ms |")
    lines += [
        "",
        f"Streams ({report['streams']} a policy, a word every {report['pace_ms']} ms): time to "
        "the first content the caller reads, p50:",
        "",
        "| output guard | time to first token | added |",
        "| --- | ---: | ---: |",
        f"| off | {ttft['off']:.0f} ms | |",
        f"| redact, window 64 characters | {ttft['output redact']:.0f} ms "
        f"| {ttft['output redact'] - ttft['off']:+.0f} ms |",
    ]
    return "\n".join(lines)


def run_stack(engine: str, args: argparse.Namespace) -> str:
    workdir = Path(tempfile.mkdtemp(prefix=f"aibroker-bench-pii-{engine}-"))
    with contextlib.ExitStack() as ctx:
        stack = bench_stack(ctx, workdir, {}, engine=engine, apis=("openai",))
        report = asyncio.run(through_stack(stack, args.rounds, args.streams, args.pace_ms))
    return stack_table(report, engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presidio", action="store_true", help="also score Presidio")
    parser.add_argument("--json", action="store_true", help="print JSON, not tables")
    parser.add_argument("--stack", choices=["tansu", "apache"], help="also through a broker")
    parser.add_argument("--rounds", type=int, default=200, help="sync calls a policy")
    parser.add_argument("--streams", type=int, default=30, help="streams a policy")
    parser.add_argument("--pace-ms", type=int, default=20, help="the mock's time a word")
    parser.add_argument("--update-docs", type=doc_page("bench-pii"), metavar="PAGE")
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
    sections = [f"{len(samples)} texts, {sum(len(s['spans']) for s in samples)} labelled spans"]
    sections += [table(name, scores[name], micros[name]) for name in detectors]
    missing = {e.value for e in Entity} - {s["type"] for x in samples for s in x["spans"]}
    if missing:
        sections.append("types with no labelled sample: " + ", ".join(sorted(missing)))
    if args.stack:
        sections.append(run_stack(args.stack, args))
    text = "\n\n".join(sections)
    print(text)
    if args.update_docs:
        update_docs(args.update_docs, text, marker="bench-pii")


if __name__ == "__main__":
    main()
