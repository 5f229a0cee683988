"""`aibroker --version` names the installed release, the one pyproject.toml declares."""

import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError
from pathlib import Path

import pytest

import aibroker
from aibroker import cli

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def declared_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def test_the_installed_command_prints_the_declared_version() -> None:
    command = Path(sys.executable).with_name("aibroker")
    out = subprocess.run(
        [str(command), "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == f"aibroker {declared_version()}"


def test_version_exits_before_any_setting_is_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> None:
        raise AssertionError("settings loaded for --version")

    monkeypatch.setattr(cli, "load_settings", refuse)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"aibroker {declared_version()}\n"


def test_a_checkout_never_installed_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(aibroker, "version", missing)
    assert aibroker.installed_version() == "unknown (not installed)"
