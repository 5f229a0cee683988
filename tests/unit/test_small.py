"""Prefer header, ids, crash-loop backoff, routes file, settings from the environment."""

from pathlib import Path

import pytest

from aibroker.devstack.supervisor import restart_delay
from aibroker.errors import ModelNotFound
from aibroker.ids import new_id
from aibroker.routes import build_route_table, resolve
from aibroker.settings import Settings
from ingress.prefer import Preferences, parse_prefer
from schemas.envelopes import Request, Status, Target

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], Preferences()),
        (["respond-async"], Preferences(respond_async=True)),
        (["wait=5"], Preferences(wait_s=5.0)),
        (["respond-async, wait=10"], Preferences(True, 10.0)),
        (["wait=abc"], Preferences()),
        (["Respond-Async", 'wait="2.5"'], Preferences(True, 2.5)),
        (["wait=-3"], Preferences(wait_s=0.0)),
    ],
)
def test_prefer(values: list[str], expected: Preferences) -> None:
    assert parse_prefer(values) == expected


def test_ids_sort_by_time_and_are_unique() -> None:
    earlier = new_id("req", now_ms=1_700_000_000_000)
    later = new_id("req", now_ms=1_700_000_000_001)
    assert earlier < later
    assert earlier.startswith("req_")
    assert len(earlier) == 30
    assert len({new_id("req") for _ in range(1000)}) == 1000


def test_restart_delay_backs_off_to_a_cap() -> None:
    assert [restart_delay(n) for n in (1, 2, 3, 4, 10)] == [1, 2, 4, 8, 30]


def test_status_terminality() -> None:
    assert {s for s in Status if s.terminal} == {
        Status.SUCCEEDED,
        Status.FAILED,
        Status.CANCELLED,
        Status.EXPIRED,
    }


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("aliases:\n  fast:\n    - {provider: openai, model: gpt-4o-mini}\n")
    monkeypatch.setenv("AIBROKER_KAFKA_BOOTSTRAP", "k:9092")
    monkeypatch.setenv("AIBROKER_KAFKA_IDEMPOTENT", "false")
    monkeypatch.setenv("AIBROKER_INGRESS_PORT", "9000")
    monkeypatch.setenv("AIBROKER_OPENAI_BASE_URL", "http://up/v1")
    monkeypatch.setenv("AIBROKER_OPENAI_API_KEY", "sk-1")
    monkeypatch.setenv("AIBROKER_DEV_API_KEY", "aib_x")
    monkeypatch.setenv(
        "AIBROKER_PROVIDERS", '{"local": {"base_url": "http://l/v1", "api_key": "x"}}'
    )
    monkeypatch.setenv("AIBROKER_ROUTES_FILE", str(routes))
    settings = Settings()
    assert settings.kafka.bootstrap == "k:9092"
    assert settings.kafka.idempotent is False
    assert settings.ingress.port == 9000
    assert settings.dev.api_key == "aib_x"
    table = build_route_table(settings)
    assert set(table.providers) == {"openai", "local"}
    assert resolve("fast", table).plain() == [Target(provider="openai", model="gpt-4o-mini")]
    assert resolve("openai/gpt-4.1", table).plain() == [Target(provider="openai", model="gpt-4.1")]
    with pytest.raises(ModelNotFound):
        resolve("anthropic/claude", table)


def test_routes_file_naming_an_unknown_provider_is_refused(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("aliases:\n  x:\n    - {provider: ghost, model: m}\n")
    with pytest.raises(ValueError, match="ghost"):
        build_route_table(Settings(routes_file=routes))


def test_request_envelope_schema_is_exportable() -> None:
    schema = Request.model_json_schema()
    assert {"id", "tenant", "kind", "model", "body", "created_at"} <= set(schema["required"])
    assert schema["properties"]["v"]["const"] == 1


def test_vector_points_have_stable_ids_and_their_text() -> None:
    import numpy as np

    from consumers.local.embeddings.vectors import points
    from schemas.openai import VectorStore

    store = VectorStore(collection="docs", ids=["a", 5], payloads=[{}, {"k": 1}])
    vectors = [np.ones(3, dtype=np.float32)] * 2
    made = points(store, "req_1", ["x", "y"], vectors)
    assert made[1].id == 5
    assert made[1].payload == {"k": 1, "text": "y", "request_id": "req_1", "id": 5}
    elsewhere = points(VectorStore(collection="other", ids=["a"]), "req_1", ["x"], vectors[:1])
    assert made[0].id != elsewhere[0].id  # a string id is per collection

    unnamed = VectorStore(collection="docs")
    first = [p.id for p in points(unnamed, "req_1", ["x", "y"], vectors)]
    assert first == [p.id for p in points(unnamed, "req_1", ["x", "y"], vectors)]  # redone
    assert first != [p.id for p in points(unnamed, "req_2", ["x", "y"], vectors)]
