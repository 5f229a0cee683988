"""Providers and model aliases: which targets a model name may be sent to.

A model is either an alias from the routes file (YAML, `aliases: {name: [{provider, model}]}`)
or `<provider>/<upstream model>` for any configured provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from aibroker.errors import ModelNotFound
from aibroker.settings import Settings
from schemas.envelopes import Target


class ProviderConfig(BaseModel):
    """An OpenAI-compatible upstream."""

    name: str
    base_url: str
    api_key: str
    timeout_s: float = 120.0


class RoutesFile(BaseModel):
    aliases: dict[str, list[Target]] = Field(default_factory=dict)


@dataclass(frozen=True)
class RouteTable:
    providers: dict[str, ProviderConfig]
    aliases: dict[str, list[Target]]

    def known_models(self) -> list[str]:
        """Aliases, then one `<provider>/*` pattern per provider."""
        return sorted(self.aliases) + [f"{name}/*" for name in sorted(self.providers)]


def resolve(model: str, table: RouteTable) -> list[Target]:
    """The ordered targets of `model`, or ModelNotFound naming the known models."""
    if model in table.aliases:
        return list(table.aliases[model])
    provider, sep, upstream = model.partition("/")
    if sep and upstream and provider in table.providers:
        return [Target(provider=provider, model=upstream)]
    known = ", ".join(table.known_models()) or "none configured"
    raise ModelNotFound(
        f"The model '{model}' does not exist or is not routed here. Known models: {known}.",
        param="model",
    )


def build_route_table(settings: Settings) -> RouteTable:
    """Providers from settings (the `openai` group and `providers`), aliases from the file."""
    providers = {
        name: ProviderConfig(name=name, **cfg.model_dump())
        for name, cfg in settings.providers.items()
    }
    if settings.openai.base_url and settings.openai.api_key:
        providers["openai"] = ProviderConfig(
            name="openai",
            base_url=settings.openai.base_url,
            api_key=settings.openai.api_key,
            timeout_s=settings.openai.timeout_s,
        )
    aliases = load_routes_file(settings.routes_file).aliases if settings.routes_file else {}
    for alias, targets in aliases.items():
        for target in targets:
            if target.provider not in providers:
                raise ValueError(f"route '{alias}' names unknown provider '{target.provider}'")
    return RouteTable(providers=providers, aliases=aliases)


def load_routes_file(path: Path) -> RoutesFile:
    with path.open() as fh:
        return RoutesFile.model_validate(yaml.safe_load(fh) or {})
