"""The docs stay true to the code: the settings reference and .env.example to the settings,
the benchmarks' tables to their pages, and the README a front door."""

import re
from pathlib import Path

import pytest
import yaml

from aibroker.cli import build_parser
from aibroker.routes import load_routes_file
from aibroker.settings import Settings
from aibroker.settings.doc import MarkersMissing, settings_table
from aibroker.stores.tenants import TenantsFile
from loadtest.doc_tables import update_docs

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


SETTINGS_PAGE = ROOT / "docs" / "reference" / "settings.md"


def between(page: str, marker: str) -> str:
    """What lies between a marker pair, which the page holds exactly once."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    assert page.count(start) == 1, start
    assert page.count(end) == 1, end
    return page.split(start)[1].split(end)[0]


def test_the_settings_reference_lists_every_setting_as_defined() -> None:
    assert between(SETTINGS_PAGE.read_text(), "settings").strip() == settings_table().strip()


def test_aibroker_settings_rewrites_only_the_table_of_its_page(tmp_path: Path) -> None:
    page = tmp_path / "settings.md"
    page.write_text(
        "# Settings\n\nProse.\n\n<!-- settings:start -->\n| stale |\n<!-- settings:end -->\nEnd.\n"
    )
    args = build_parser().parse_args(["settings", "--update-docs", str(page)])
    args.func(Settings(), args)
    text = page.read_text()
    assert text.startswith("# Settings\n\nProse.\n\n<!-- settings:start -->\n| variable |")
    assert text.endswith("<!-- settings:end -->\nEnd.\n")
    assert "| stale |" not in text
    assert between(text, "settings").strip() == settings_table().strip()


def test_aibroker_settings_refuses_a_page_without_markers(tmp_path: Path) -> None:
    page = tmp_path / "settings.md"
    page.write_text("# Settings\n")
    args = build_parser().parse_args(["settings", "--update-docs", str(page)])
    with pytest.raises(SystemExit, match="settings:start"):
        args.func(Settings(), args)
    assert page.read_text() == "# Settings\n"


def bench_pages() -> dict[str, Path]:
    """Each `make bench*` run (by module) and the docs page it writes its table into."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    perf = re.search(r"^PERF_DOCS := (\S+)$", makefile, re.MULTILINE)
    runs = re.findall(r"-m loadtest\.(\w+) [^\n]*--update-docs (\S+)", makefile)
    assert perf, "the Makefile names the performance pages"
    return {module: ROOT / page.replace("$(PERF_DOCS)", perf[1]) for module, page in runs}


def test_every_benchmark_writes_into_a_docs_page_that_holds_its_markers() -> None:
    pages = bench_pages()
    assert set(pages) == {
        "bench",
        "bench_local",
        "bench_spill",
        "bench_dispatch",
        "bench_delay",
        "bench_batch",
        "bench_cache",
        "bench_semantic",
        "bench_rag_quality",
        "bench_rag",
        "bench_injection",
        "bench_pii",
        "bench_budget",
        "scenarios",
    }
    for module, page in pages.items():
        assert page.parent == ROOT / "docs" / "performance", page
        source = (ROOT / "loadtest" / f"{module}.py").read_text()
        markers = re.findall(r'(?:update_docs|report_engines)\([^)]*marker="([\w-]+)"\)', source)
        assert len(markers) == 1, module
        assert between(page.read_text(), markers[0]).strip(), (module, page)


def test_update_docs_replaces_only_what_lies_between_its_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Bench\n\n<!-- b:start -->\nold\n<!-- b:end -->\n\n## History\nkept\n")
    update_docs(page, "\n| new |\n", marker="b")
    assert (
        page.read_text()
        == "# Bench\n\n<!-- b:start -->\n| new |\n<!-- b:end -->\n\n## History\nkept\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        "# No markers\n",
        "<!-- b:end -->\n<!-- b:start -->\n",
        "<!-- b:start -->\n" * 2 + "<!-- b:end -->\n",
    ],
)
def test_update_docs_refuses_a_page_without_one_pair_of_markers(tmp_path: Path, text: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(text)
    with pytest.raises(MarkersMissing):
        update_docs(page, "| new |", marker="b")
    assert page.read_text() == text


def test_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    quick_start = readme.split("\n## Quick start\n")[1].split("\n## ")[0]
    commands = re.findall(r"^(make \w+)", quick_start.split("```sh\n")[1].split("```")[0], re.M)
    assert commands == ["make dev", "make test"]


def test_env_example_names_only_real_settings() -> None:
    table = settings_table()
    named = re.findall(r"(AIBROKER_[A-Z_]+)=", (ROOT / ".env.example").read_text())
    assert named
    for name in named:
        assert f"`{name}`" in table, name


def test_the_example_routes_and_tenants_files_load() -> None:
    routes = load_routes_file(ROOT / "routes.example.yaml")
    assert routes.aliases["fast"].strategy == "ordered"
    with (ROOT / "tenants.example.yaml").open() as fh:
        tenants = TenantsFile.model_validate(yaml.safe_load(fh))
    assert tenants.tenants[0].limits.rpm == 600
