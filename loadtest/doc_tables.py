"""Benchmark tables into the docs: a run replaces the text between its markers in a page of
`docs/performance/` (`--update-docs PAGE`), and leaves the prose around them alone."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aibroker.settings.doc import MarkersMissing, markers, replace_marked


def update_docs(path: Path, text: str, marker: str) -> None:
    """Replace what lies between `<!-- {marker}:start -->` and `<!-- {marker}:end -->` in
    `path` with `text`."""
    path.write_text(replace_marked(path.read_text(), marker, text))


def doc_page(marker: str) -> Callable[[str], Path]:
    """An argparse `type` for `--update-docs`: the page must hold the run's markers, checked
    before a run of minutes rather than after it."""

    def parse(value: str) -> Path:
        path = Path(value)
        try:
            markers(path.read_text(), marker)
        except (OSError, MarkersMissing) as exc:
            raise argparse.ArgumentTypeError(f"{path}: {exc}") from exc
        return path

    return parse


ENGINE_NAMES = {"apache": "Apache Kafka 3.9.1 (one KRaft node)", "tansu": "Tansu (in memory)"}


def report_engines(
    args: argparse.Namespace,
    run_on: Callable[[str, argparse.Namespace], dict[str, Any]],
    table: Callable[[dict[str, Any], int], str],
    marker: str,
) -> None:
    """A benchmark run on each engine `--kafka` names (`both`: Apache Kafka, then Tansu): its
    reports as JSON in `--out`, a table an engine printed, and, with `--update-docs`, written
    between `marker`'s markers."""
    engines = ["apache", "tansu"] if args.kafka == "both" else [args.kafka]
    reports, sections = {}, []
    for engine in engines:
        report = run_on(engine, args)
        reports[engine] = report
        sections.append(f"**On {ENGINE_NAMES[engine]}**\n\n{table(report, args.concurrency)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(reports, indent=2) + "\n")
    text = "\n".join(sections)
    print(text)
    print(f"full report: {args.out}")
    if args.update_docs:
        update_docs(args.update_docs, text, marker=marker)
