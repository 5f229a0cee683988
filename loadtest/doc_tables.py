"""Benchmark tables into the docs: a run replaces the text between its markers in a page of
`docs/performance/` (`--update-docs PAGE`), and leaves the prose around them alone."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


class MarkersMissing(ValueError):
    """The page does not hold the marker pair exactly once: writing anyway would append a
    second table or drop the page's text, so nothing is written."""


def update_docs(path: Path, text: str, marker: str) -> None:
    """Replace what lies between `<!-- {marker}:start -->` and `<!-- {marker}:end -->` in
    `path` with `text`."""
    page = path.read_text()
    start, end = _markers(page, path, marker)
    head, _, rest = page.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{start}\n{text.strip()}\n{end}{tail}")


def doc_page(marker: str) -> Callable[[str], Path]:
    """An argparse `type` for `--update-docs`: the page must hold the run's markers, checked
    before a run of minutes rather than after it."""

    def parse(value: str) -> Path:
        path = Path(value)
        try:
            _markers(path.read_text(), path, marker)
        except (OSError, MarkersMissing) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
        return path

    return parse


def _markers(page: str, path: Path, marker: str) -> tuple[str, str]:
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if page.count(start) != 1 or page.count(end) != 1 or page.index(start) > page.index(end):
        raise MarkersMissing(f"{path} must hold {start} then {end}, once each")
    return start, end
