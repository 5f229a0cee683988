"""BM25-style sparse vectors: stable hashed terms, saturated and length-normalised weights,
and, through Qdrant's local mode with `Modifier.IDF`, a rare term outweighing a common one."""

from __future__ import annotations

import importlib.util

import pytest

from aibroker.rag.sparse import K1, B, query_terms, sparse_terms, term_index, words

pytestmark = pytest.mark.unit


def weight_of(text: str, term: str) -> float:
    indices, values = sparse_terms(text)
    return dict(zip(indices, values, strict=True)).get(term_index(term), 0.0)


def test_terms_are_lower_cased_words() -> None:
    assert words("The River-bank, the RIVER; café 2024!") == [
        "the", "river", "bank", "the", "river", "café", "2024",
    ]  # fmt: skip


def test_term_indices_are_stable_unsigned_32_bit() -> None:
    # Pinned: a changed hash would orphan the sparse vectors of every collection indexed.
    assert term_index("river") == 1660202622
    assert all(0 <= term_index(w) < 2**32 for w in ("a", "zeta", "東京", "x" * 500))


def test_the_vector_is_sorted_and_has_one_entry_per_term() -> None:
    indices, values = sparse_terms("b a c a b a")
    assert indices == sorted(set(indices))
    assert len(indices) == 3 == len(values)
    assert all(v > 0 for v in values)
    assert sparse_terms("") == ([], [])
    assert sparse_terms("  ,.; ") == ([], [])


def test_a_repeated_term_weighs_more_but_saturates() -> None:
    base = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    once, twice, many = (weight_of(f"{base} {'river ' * n}", "river") for n in (1, 2, 30))
    assert once < twice < many < K1 + 1
    assert twice / once < 2  # not proportional to the count


def test_a_long_chunk_lowers_a_terms_weight() -> None:
    short = weight_of("the river flows north", "river")
    long = weight_of("the river flows north " + "and on " * 200, "river")
    assert long < short


def test_the_weight_is_bm25s_term_frequency_part() -> None:
    text = "river " * 3 + "bank"
    n, tf = 4, 3
    expected = tf * (K1 + 1) / (tf + K1 * (1 - B + B * n / 150))
    assert weight_of(text, "river") == pytest.approx(expected)


def test_a_query_vector_is_one_for_each_distinct_term() -> None:
    indices, values = query_terms("River river bank")
    assert sorted(indices) == sorted({term_index("river"), term_index("bank")})
    assert values == [1.0, 1.0]


@pytest.mark.skipif(importlib.util.find_spec("qdrant_client") is None, reason="needs qdrant-client")
async def test_qdrant_applies_idf_so_the_rare_term_decides() -> None:
    from qdrant_client import AsyncQdrantClient, models

    client = AsyncQdrantClient(location=":memory:")
    config = {"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)}
    await client.create_collection("c", vectors_config={}, sparse_vectors_config=config)
    texts = [f"the report for week {n} of the project" for n in range(20)]
    texts.append("the the the the report mentions a kestrel")
    texts.append("a kestrel report")
    points = []
    for n, text in enumerate(texts):
        indices, values = sparse_terms(text)
        vector = {"bm25": models.SparseVector(indices=indices, values=values)}
        points.append(models.PointStruct(id=n, vector=vector, payload={"text": text}))
    await client.upsert("c", points=points, wait=True)
    indices, values = query_terms("the kestrel report")
    found = await client.query_points(
        "c", query=models.SparseVector(indices=indices, values=values), using="bm25", limit=3
    )
    await client.close()
    # The rare term ranks both its chunks first: "the" and "report", in every chunk, barely
    # count, however often they occur.
    assert {point.id for point in found.points[:2]} == {20, 21}
    assert found.points[2].score < found.points[1].score / 3
