"""The README and .env.example stay true to the settings."""

import re
from pathlib import Path

import pytest
import yaml

from aibroker.routes import load_routes_file
from aibroker.settings.doc import settings_table
from aibroker.stores.tenants import TenantsFile

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_readme_lists_every_setting_as_defined() -> None:
    assert settings_table() in (ROOT / "README.md").read_text()


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
