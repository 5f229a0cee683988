"""How an index job cuts its chunks into embeddings requests."""

from __future__ import annotations

import pytest

from aibroker.rag.batching import Slot, embed_batches

pytestmark = pytest.mark.unit


def test_neighbouring_documents_share_a_request() -> None:
    batches = embed_batches("job", [("a", 1), ("b", 1), ("c", 3)], size=4)
    assert [b.slots for b in batches] == [
        (Slot(0, 0), Slot(1, 0), Slot(2, 0), Slot(2, 1)),
        (Slot(2, 2),),
    ]


def test_ids_are_stable_and_named_by_their_chunks() -> None:
    first = embed_batches("job", [("a", 2), ("b", 2)], size=2)
    again = embed_batches("job", [("a", 2), ("b", 2)], size=2)
    assert [b.request_id for b in first] == [b.request_id for b in again]
    resumed = embed_batches("job", [("b", 2)], size=2)  # `a` finished before a crash
    assert resumed[0].request_id != first[0].request_id
    assert resumed[0].request_id.split(".")[-1] == first[1].request_id.split(".")[-1]


def test_no_documents_no_requests() -> None:
    assert embed_batches("job", [], size=64) == []
    assert embed_batches("job", [("a", 0)], size=64) == []
    with pytest.raises(ValueError, match="at least 1"):
        embed_batches("job", [("a", 1)], size=0)
