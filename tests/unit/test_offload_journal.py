"""The offload topic folded back into live provider batches: lines before their batch, changes
of state win, tombstones forget, lines whose batch never came are left out."""

from __future__ import annotations

import pytest

from aibroker.kafka.clients import encode
from aibroker.stores.offload import BatchState, ProviderBatch
from consumers.offload.journal import Journal, batch_key, line_key
from schemas.envelopes import Kind, Mode, Request

pytestmark = pytest.mark.unit


def request(n: int) -> Request:
    return Request(
        id=f"req_{n}",
        tenant="t",
        kind=Kind.CHAT,
        model="mock/echo",
        body={"messages": [{"role": "user", "content": "hi"}]},
        mode=Mode.ASYNC,
        priority="batch",
        created_at=1.0,
    )


def batch(batch_id: str, **changes: object) -> ProviderBatch:
    doc = ProviderBatch(
        id=batch_id,
        provider="mock",
        group="/v1/chat/completions",
        created_at=1.0,
        next_poll_at=1.0,
        poll_delay_s=0.0,
        lines=2,
    )
    return doc.model_copy(update=changes)


def saved(journal: Journal, b: ProviderBatch, *lines: Request) -> None:
    for r in lines:
        journal.apply(line_key(b.id, r.id), encode(r))
    journal.apply(batch_key(b.id), b.model_dump_json().encode())


def test_a_batch_comes_back_with_its_lines_and_its_last_state() -> None:
    journal = Journal()
    saved(journal, batch("obat_1"), request(1), request(2))
    moved = batch("obat_1", state=BatchState.IN_PROGRESS, provider_id="batch_x")
    journal.apply(batch_key("obat_1"), moved.model_dump_json().encode())
    [(found, lines)] = journal.live()
    assert (found.state, found.provider_id) == (BatchState.IN_PROGRESS, "batch_x")
    assert sorted(r.id for r in lines) == ["req_1", "req_2"]


def test_a_finished_batch_is_forgotten_and_another_stays() -> None:
    journal = Journal()
    saved(journal, batch("obat_1"), request(1), request(2))
    saved(journal, batch("obat_2"), request(3))
    journal.apply(batch_key("obat_1"), None)
    journal.apply(line_key("obat_1", "req_1"), None)
    assert [(b.id, [r.id for r in lines]) for b, lines in journal.live()] == [("obat_2", ["req_3"])]


def test_lines_without_their_batch_are_left_out() -> None:
    """A pool that died while saving a batch: its lines were never committed and come again."""
    journal = Journal()
    journal.apply(line_key("obat_9", "req_1"), encode(request(1)))
    assert journal.live() == []


def test_an_undecodable_record_is_skipped() -> None:
    journal = Journal()
    journal.apply(batch_key("obat_1"), b'{"not": "a batch"}')
    saved(journal, batch("obat_2"), request(1))
    assert [b.id for b, _ in journal.live()] == ["obat_2"]
