"""The grounded prompt and its sources, numbered alike; the retrieval metrics' arithmetic."""

from __future__ import annotations

import pytest

from aibroker.rag.index import Hit
from aibroker.rag.prompt import SYSTEM, grounded_messages, sources
from aibroker.rag.quality import mrr, recall_at_k, reciprocal_rank

pytestmark = pytest.mark.unit

HITS = [
    Hit("p1", 0.91, " Oslo is the capital of Norway. ", "doc-a", 0, {"lang": "en"}),
    Hit("p2", 0.72, "Bergen is the rainiest city.", "doc-b", 3, {}),
]


def test_the_prompt_numbers_the_sources_in_rank_order_before_the_question() -> None:
    system, user = grounded_messages("  What is Norway's capital? ", HITS)
    assert system == {"role": "system", "content": SYSTEM}
    assert "[1]" in SYSTEM
    assert "only" in SYSTEM
    assert user["role"] == "user"
    assert user["content"] == (
        "Sources:\n\n[1] Oslo is the capital of Norway.\n\n[2] Bergen is the rainiest city."
        "\n\nQuestion: What is Norway's capital?"
    )


def test_instructions_come_after_the_rule_and_no_hits_are_said_so() -> None:
    system, user = grounded_messages("Why?", [], instructions=" Answer in French. ")
    assert system["content"] == f"{SYSTEM}\n\nAnswer in French."
    assert user["content"] == "Sources: none were found.\n\nQuestion: Why?"


def test_sources_carry_the_number_the_model_cites() -> None:
    assert sources(HITS) == [
        {"index": 1, "document_id": "doc-a", "chunk_index": 0, "score": 0.91,
         "text": " Oslo is the capital of Norway. ", "metadata": {"lang": "en"}},
        {"index": 2, "document_id": "doc-b", "chunk_index": 3, "score": 0.72,
         "text": "Bergen is the rainiest city.", "metadata": {}},
    ]  # fmt: skip


def test_recall_at_k_averages_the_share_found_per_query() -> None:
    runs = [(["a", "b", "c"], {"a"}), (["x", "y", "b"], {"b", "z"}), (["q"], {"r"})]
    assert recall_at_k(runs, 3) == pytest.approx((1 + 0.5 + 0) / 3)
    assert recall_at_k(runs, 1) == pytest.approx(1 / 3)


def test_mrr_averages_one_over_the_first_relevant_rank() -> None:
    assert reciprocal_rank(["x", "y", "a"], {"a", "y"}) == 0.5
    assert reciprocal_rank(["x"], {"a"}) == 0.0
    assert mrr([(["a"], {"a"}), (["x", "a"], {"a"}), (["x"], {"a"})]) == pytest.approx(0.5)


@pytest.mark.parametrize("runs", [[], [(["a"], set())]])
def test_metrics_refuse_what_cannot_be_measured(runs: list[tuple[list[str], set[str]]]) -> None:
    with pytest.raises(ValueError, match="quer"):
        mrr(runs)
    with pytest.raises(ValueError, match="quer"):
        recall_at_k(runs, 5)
