"""Benchmark tables into the docs: a run replaces the text between its markers in a page of
`docs/performance/` (`--update-docs PAGE`), and leaves the prose around them alone."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

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
