"""Providers, local models and aliases: which targets a model name may be sent to.

A model is an alias from the routes file, a local model's served name (`all-minilm-l6-v2`),
or `<provider>/<upstream model>` for any configured provider (`openai/gpt-4o`, and
`embed/<name>`, `ocr/<name>`, `vllm/<name>` for local models). The routes file (YAML):

```yaml
aliases:
  fast: [{provider: openai, model: gpt-4o-mini}, {provider: claude, model: claude-3-5-haiku}]
  embed:                              # a strategy: ordered (default), weighted, cheapest,
    strategy: least_backlog           # least_backlog (consumer lag of each target's topic)
    targets:
      - {provider: embed, model: all-minilm-l6-v2, max_backlog: 500}   # then spill over
      - {provider: openai, model: text-embedding-3-small, weight: 1, price: "0.02"}
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, field_validator

from aibroker.errors import InvalidRequest, ModelNotFound
from aibroker.prices import load_prices
from aibroker.settings import ProviderSettings, Settings
from schemas.envelopes import Kind, Target
from topics.catalog import TopicNames

LOCAL_ENGINES: dict[str, Kind] = {"embed": Kind.EMBEDDINGS, "ocr": Kind.OCR, "vllm": Kind.CHAT}
"""The local engines, by the provider name their targets carry, and what each serves."""
API_KINDS: dict[str, frozenset[Kind]] = {
    "openai": frozenset({Kind.CHAT, Kind.EMBEDDINGS, Kind.MODERATIONS}),
    "gemini": frozenset({Kind.CHAT, Kind.EMBEDDINGS}),
    "anthropic": frozenset({Kind.CHAT}),
}
"""What each provider API has endpoints for. Whether one upstream model can do it is the
provider's to say (its own error comes back): a chat model asked for embeddings, say."""
RESPONSES_OVER_CHAT = frozenset({Kind.RESPONSES})
"""What every target that serves chat serves too: the Responses API, translated to chat (or
sent as it came to a provider with `responses_api`)."""
API_NAMES = {"openai": "OpenAI-compatible", "gemini": "Gemini", "anthropic": "Anthropic"}
EXTERNAL_GROUP = "aib-pool-external"
"""The consumer group of the external pool (every provider's dispatch topic)."""


class ProviderConfig(ProviderSettings):
    """An upstream deployment by name: its settings (`AIBROKER_PROVIDERS` or a named
    provider's group) and the name routes call it by."""

    name: str


@dataclass(frozen=True)
class LocalModel:
    """A model a local pool serves: `engine` is `embed`, `ocr` or `vllm`; `source` is what
    the engine loads (a model id or path; for OCR, the engine library)."""

    name: str
    engine: str
    source: str

    @property
    def target(self) -> Target:
        return Target(provider=self.engine, model=self.name)


class RouteTarget(Target):
    """A target of an alias, with what the routing strategies weigh."""

    weight: float = Field(default=1.0, gt=0, description="Share of traffic (`weighted`).")
    price: Decimal | None = Field(
        default=None,
        description="USD per million tokens, input + output (`cheapest`); unset: the price "
        "table's.",
    )
    max_backlog: int | None = Field(
        default=None, ge=0, description="Spill to the next target above this consumer lag."
    )

    def plain(self) -> Target:
        return Target(provider=self.provider, model=self.model)


Strategy = Literal["ordered", "weighted", "cheapest", "least_backlog"]


class Route(BaseModel):
    strategy: Strategy = "ordered"
    kind: Kind | None = Field(
        default=None,
        description="What the alias serves (`chat`, `embeddings`, `ocr`); every target must "
        "serve it. Unset: what its targets have in common.",
    )
    targets: list[RouteTarget] = Field(min_length=1)

    def plain(self) -> list[Target]:
        return [t.plain() for t in self.targets]


class RoutesFile(BaseModel):
    aliases: dict[str, Route] = Field(default_factory=dict)

    @field_validator("aliases", mode="before")
    @classmethod
    def _lists_are_ordered(cls, value: object) -> object:
        """`alias: [targets]` is short for `alias: {strategy: ordered, targets: [...]}`."""
        if isinstance(value, dict):
            return {k: {"targets": v} if isinstance(v, list) else v for k, v in value.items()}
        return value


RESOLVED_KEPT = 10_000
"""Routes a table remembers once resolved (model names are client input: `provider/<any>`)."""


@dataclass(frozen=True)
class RouteTable:
    providers: dict[str, ProviderConfig]
    aliases: dict[str, Route]
    local: dict[str, LocalModel] = dataclass_field(default_factory=dict)
    resolved: dict[tuple[str, Kind | None], Route] = dataclass_field(
        default_factory=dict, repr=False, compare=False
    )
    """What `resolve` found, by model and kind: read-only Routes, built once (every request
    resolves its model, in ingress and again in the dispatcher)."""

    def known_models(self) -> list[str]:
        """Aliases and local models, then one `<provider>/*` pattern per provider."""
        return sorted([*self.aliases, *self.local]) + [f"{p}/*" for p in sorted(self.providers)]

    def group(self, target: Target) -> str:
        """The consumer group of the pool that serves the target."""
        if target.provider in LOCAL_ENGINES:
            return f"aib-pool-{target.provider}-{target.model.lower()}"
        return EXTERNAL_GROUP

    def serves(self, target: Target) -> frozenset[Kind]:
        """A local pool serves its engine's kind; a provider what its API has endpoints for."""
        if target.provider in LOCAL_ENGINES:
            kind = LOCAL_ENGINES[target.provider]
            return frozenset({kind}) | (RESPONSES_OVER_CHAT if kind is Kind.CHAT else frozenset())
        provider = self.providers.get(target.provider)
        kinds = API_KINDS[provider.kind] if provider else frozenset()
        return kinds | RESPONSES_OVER_CHAT if Kind.CHAT in kinds else kinds

    def refusal(self, model: str, target: Target, kind: Kind) -> str | None:
        """Why `target` cannot serve `kind` for `model`, or None when it can."""
        if kind in self.serves(target):
            return None
        if target.provider in LOCAL_ENGINES:
            other = LOCAL_ENGINES[target.provider]
            return (
                f"The model '{model}' does not serve {kind.endpoint}; it serves {other.endpoint}."
            )
        api = API_NAMES[self.providers[target.provider].kind]
        return (
            f"The model '{model}' does not serve {kind.endpoint}: provider "
            f"'{target.provider}' speaks the {api} API, which has no {kind.value} endpoint."
        )

    def topic(self, names: TopicNames, target: Target) -> str:
        """Each external provider has one dispatch topic; each local model has its own."""
        if target.provider in LOCAL_ENGINES:
            return names.dispatch_local(target.provider, target.model)
        return names.dispatch(target.provider)

    def pools(self, names: TopicNames) -> list[tuple[str, str, str]]:
        """Each pool as (key, topic, group): `provider` for external providers (their pool
        shares one group), `engine/name` for local models."""
        external = [(p, names.dispatch(p), EXTERNAL_GROUP) for p in sorted(self.providers)]
        local = [
            (f"{m.engine}/{m.name}", self.topic(names, m.target), self.group(m.target))
            for m in self.local.values()
        ]
        return external + local

    def dispatch_topics(self, names: TopicNames) -> list[str]:
        external = [names.dispatch(p) for p in sorted(self.providers)]
        return external + sorted(self.topic(names, m.target) for m in self.local.values())


def resolve(model: str, table: RouteTable, kind: Kind | None = None) -> Route:
    """The route of `model`, or ModelNotFound naming the known models. With `kind`, a model
    that serves another kind (a chat model asked for embeddings) is refused. The Route is
    shared: read it, never change it."""
    route = table.resolved.get((model, kind))
    if route is None:
        route = _resolve(model, table, kind)
        if len(table.resolved) < RESOLVED_KEPT:
            table.resolved[(model, kind)] = route
    return route


def _resolve(model: str, table: RouteTable, kind: Kind | None) -> Route:
    route = _lookup(model, table)
    if kind is None:
        return route
    if route.kind is not None and route.kind is not kind and not _over_chat(route.kind, kind):
        raise InvalidRequest(
            f"The model '{model}' does not serve {kind.endpoint}; it serves {route.kind.endpoint}.",
            param="model",
            code="model_not_supported",
        )
    for target in route.targets:
        if reason := table.refusal(model, target, kind):
            raise InvalidRequest(reason, param="model", code="model_not_supported")
    return route


def _over_chat(declared: Kind, asked: Kind) -> bool:
    """A chat alias serves the Responses API too."""
    return declared is Kind.CHAT and asked in RESPONSES_OVER_CHAT


def _lookup(model: str, table: RouteTable) -> Route:
    if model in table.aliases:
        return table.aliases[model]
    if model in table.local:
        return _single(table.local[model].target)
    provider, sep, upstream = model.partition("/")
    if sep and upstream:
        if provider in table.providers:
            return _single(Target(provider=provider, model=upstream))
        local = table.local.get(upstream)
        if local is not None and local.engine == provider:
            return _single(local.target)
    known = ", ".join(table.known_models()) or "none configured"
    raise ModelNotFound(
        f"The model '{model}' does not exist or is not routed here. Known models: {known}.",
        param="model",
    )


def _single(target: Target) -> Route:
    return Route(targets=[RouteTarget(provider=target.provider, model=target.model)])


def build_route_table(settings: Settings) -> RouteTable:
    """Providers from settings (the `openai`, `anthropic` and `gemini` groups and
    `providers`), local models from the
    `embeddings`, `ocr` and `vllm` groups, aliases from the routes file."""
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
            flex_timeout_s=settings.openai.flex_timeout_s,
        )
    for kind, group in (("anthropic", settings.anthropic), ("gemini", settings.gemini)):
        if group.api_key:
            providers[kind] = ProviderConfig(
                name=kind,
                base_url=group.base_url,
                api_key=group.api_key,
                timeout_s=group.timeout_s,
                kind=kind,
            )
    clash = sorted(set(providers) & set(LOCAL_ENGINES))
    if clash:
        raise ValueError(f"provider names {clash} are reserved for local engines")
    local = local_models(settings)
    aliases = load_routes_file(settings.routes_file).aliases if settings.routes_file else {}
    prices = load_prices(settings.prices_file, {n: p.kind for n, p in providers.items()})
    for alias, route in aliases.items():
        for target in route.targets:
            if target.price is None and (price := prices.find(target.provider, target.model)):
                target.price = price.input + price.output
            if target.provider in LOCAL_ENGINES:
                if target.model not in local or local[target.model].engine != target.provider:
                    raise ValueError(f"route '{alias}' names unknown local model '{target.model}'")
            elif target.provider not in providers:
                raise ValueError(f"route '{alias}' names unknown provider '{target.provider}'")
    table = RouteTable(providers=providers, aliases=aliases, local=local)
    for alias, route in aliases.items():
        check_alias_kind(alias, route, table)
    return table


def check_alias_kind(alias: str, route: Route, table: RouteTable) -> None:
    """An alias's targets must all serve one kind (the declared one, if any): a request is
    never routed to a target that cannot answer its endpoint."""
    served = {f"{t.provider}/{t.model}": table.serves(t) for t in route.targets}
    common = frozenset.intersection(*served.values())
    if route.kind is not None and route.kind not in common:
        wrong = [k for k, kinds in served.items() if route.kind not in kinds]
        raise ValueError(
            f"route '{alias}' is declared {route.kind.value}, but {', '.join(wrong)} cannot "
            f"serve {route.kind.endpoint}"
        )
    if not common:
        each = "; ".join(
            f"{k} serves {', '.join(sorted(x.value for x in kinds))}" for k, kinds in served.items()
        )
        raise ValueError(f"route '{alias}' mixes kinds no target has in common: {each}")


def local_models(settings: Settings) -> dict[str, LocalModel]:
    served = [
        *(LocalModel(n, "embed", s) for n, s in settings.embeddings.models.items()),
        *(LocalModel(n, "ocr", s) for n, s in settings.ocr.models.items()),
        *(LocalModel(n, "vllm", s) for n, s in settings.vllm.models.items()),
    ]
    table: dict[str, LocalModel] = {}
    for model in served:
        if not _SERVED_NAME.fullmatch(model.name):
            raise ValueError(f"local model name '{model.name}' must match {_SERVED_NAME.pattern}")
        if model.name in table:
            raise ValueError(f"local model name '{model.name}' is served twice")
        table[model.name] = model
    return table


_SERVED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""Served names of local models are also topic-name parts: Kafka's legal characters."""


def load_routes_file(path: Path) -> RoutesFile:
    with path.open() as fh:
        return RoutesFile.model_validate(yaml.safe_load(fh) or {})
