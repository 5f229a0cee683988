"""What each target serves, and the kind checks: at request time (an early 400) and when the
routes are loaded (an alias whose targets share no kind is refused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aibroker.errors import InvalidRequest
from aibroker.routes import build_route_table, resolve
from aibroker.settings import (
    EmbeddingsSettings,
    OpenAISettings,
    ProviderSettings,
    Settings,
    VllmSettings,
)
from schemas.envelopes import Kind, Target

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def settings(tmp_path: Path, routes: str = "aliases: {}\n") -> Settings:
    path = tmp_path / "routes.yaml"
    path.write_text(routes)
    return Settings(
        openai=OpenAISettings(base_url="http://o/v1", api_key="k"),
        providers={
            "claude": ProviderSettings(base_url="http://a", api_key="k", kind="anthropic"),
            "gem": ProviderSettings(base_url="http://g", api_key="k", kind="gemini"),
        },
        embeddings=EmbeddingsSettings(models={"minilm": "all-minilm-l6-v2"}),
        vllm=VllmSettings(models={"qwen": "Qwen/Qwen2.5-0.5B-Instruct"}),
        routes_file=path,
    )


@pytest.mark.parametrize(
    ("target", "kinds"),
    [
        (Target(provider="embed", model="minilm"), {Kind.EMBEDDINGS}),
        (Target(provider="vllm", model="qwen"), {Kind.CHAT, Kind.RESPONSES}),
        (
            Target(provider="openai", model="text-embedding-3-small"),
            {Kind.CHAT, Kind.EMBEDDINGS, Kind.RESPONSES, Kind.MODERATIONS},
        ),
        (
            Target(provider="gem", model="gemini-embedding-001"),
            {Kind.CHAT, Kind.EMBEDDINGS, Kind.RESPONSES},
        ),
        (Target(provider="claude", model="claude-3-5-haiku-latest"), {Kind.CHAT, Kind.RESPONSES}),
    ],
)
def test_what_a_target_serves(tmp_path: Path, target: Target, kinds: set[Kind]) -> None:
    assert build_route_table(settings(tmp_path)).serves(target) == kinds


@pytest.mark.parametrize(
    ("model", "kind", "refusal"),
    [
        ("openai/text-embedding-3-small", Kind.EMBEDDINGS, None),
        ("gem/gemini-embedding-001", Kind.EMBEDDINGS, None),
        ("minilm", Kind.EMBEDDINGS, None),
        (
            "claude/claude-3-5-haiku-latest",
            Kind.EMBEDDINGS,
            "provider 'claude' speaks the Anthropic API, which has no embeddings endpoint",
        ),
        ("minilm", Kind.CHAT, "it serves /v1/embeddings"),
        ("qwen", Kind.EMBEDDINGS, "it serves /v1/chat/completions"),
        ("openai/gpt-4o", Kind.OCR, "which has no ocr endpoint"),
        ("spill", Kind.EMBEDDINGS, None),
        ("spill", Kind.CHAT, "it serves /v1/embeddings"),  # the alias's local pool
        ("vectors", Kind.CHAT, "it serves /v1/embeddings"),  # declared, all external
    ],
)
def test_the_endpoint_asked_decides(
    tmp_path: Path, model: str, kind: Kind, refusal: str | None
) -> None:
    routes = """
aliases:
  spill:
    - {provider: embed, model: minilm, max_backlog: 10}
    - {provider: openai, model: text-embedding-3-small}
  vectors:
    kind: embeddings
    targets:
      - {provider: openai, model: text-embedding-3-small}
      - {provider: gem, model: gemini-embedding-001}
"""
    table = build_route_table(settings(tmp_path, routes))
    if refusal is None:
        assert resolve(model, table, kind).targets
        return
    with pytest.raises(InvalidRequest) as raised:
        resolve(model, table, kind)
    assert raised.value.error_code == "model_not_supported"
    assert refusal in raised.value.message


@pytest.mark.parametrize(
    ("routes", "named"),
    [
        (  # a local embeddings pool and a local chat model share no kind
            "aliases: {mixed: [{provider: embed, model: minilm}, {provider: vllm, model: qwen}]}",
            ["embed/minilm serves embeddings", "vllm/qwen serves chat"],
        ),
        (  # Anthropic has no embeddings behind a local embeddings pool
            "aliases: {bad: [{provider: embed, model: minilm}, "
            "{provider: claude, model: claude-3-5-haiku-latest}]}",
            ["embed/minilm serves embeddings", "claude/claude-3-5-haiku-latest serves chat"],
        ),
        (  # declared embeddings, with a target that cannot
            "aliases: {v: {kind: embeddings, targets: [{provider: openai, model: m}, "
            "{provider: claude, model: c}]}}",
            ["declared embeddings", "claude/c cannot serve /v1/embeddings"],
        ),
    ],
)
def test_an_alias_mixing_kinds_is_refused_at_load(
    tmp_path: Path, routes: str, named: list[str]
) -> None:
    with pytest.raises(ValueError, match="route '") as raised:
        build_route_table(settings(tmp_path, routes))
    for text in named:
        assert text in str(raised.value)


def test_the_example_routes_file_loads_as_written(tmp_path: Path) -> None:
    example = (ROOT / "routes.example.yaml").read_text()
    table = build_route_table(
        settings(tmp_path, example).model_copy(
            update={
                "providers": {
                    "mock": ProviderSettings(base_url="http://m/v1", api_key="k"),
                    "anthropic": ProviderSettings(
                        base_url="http://a", api_key="k", kind="anthropic"
                    ),
                    "gemini": ProviderSettings(base_url="http://g", api_key="k", kind="gemini"),
                },
                "embeddings": EmbeddingsSettings(models={"all-minilm-l6-v2": "all-minilm-l6-v2"}),
            }
        )
    )
    assert {"fast", "minilm"} <= set(table.aliases)
    spill = resolve("minilm", table, Kind.EMBEDDINGS)
    assert [t.provider for t in spill.targets] == ["embed", "openai"]
    assert spill.targets[0].max_backlog is not None
