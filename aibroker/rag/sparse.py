"""BM25-style sparse vectors for Qdrant, the lexical half of hybrid search: a document's
weight for a term is BM25's saturated term frequency, its length normalised, and the
collection's sparse vector is configured with `Modifier.IDF` so Qdrant multiplies in the
inverse document frequency it keeps itself (the one part that needs the whole collection).

Terms are lower-cased words (Unicode word characters) hashed to stable 32-bit indices: no
vocabulary to keep, the same index in every process; a collision (two words in 2**32) only
adds their weights.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

K1 = 1.2
"""How fast a term's weight saturates with its count (BM25's usual value)."""
B = 0.75
"""How much a long chunk's weights are lowered (BM25's usual value)."""
AVERAGE_WORDS = 150
"""The chunk length, in words, that is neither lowered nor raised: about a default chunk."""

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The terms of `text`: lower-cased runs of word characters."""
    return _WORD.findall(text.lower())


def term_index(term: str) -> int:
    """A term's stable index: the first 4 bytes of its BLAKE2b digest (Qdrant's indices are
    unsigned 32-bit)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "big")


def _vector(weights: dict[int, float]) -> tuple[list[int], list[float]]:
    ordered = sorted(weights.items())
    return [index for index, _ in ordered], [weight for _, weight in ordered]


def sparse_terms(text: str) -> tuple[list[int], list[float]]:
    """A chunk's sparse vector (indices ascending, weights): for each term with count `tf` in
    a chunk of `n` words, `tf * (K1 + 1) / (tf + K1 * (1 - B + B * n / AVERAGE_WORDS))`."""
    terms = words(text)
    norm = K1 * (1 - B + B * len(terms) / AVERAGE_WORDS)
    weights: dict[int, float] = {}
    for term, tf in Counter(terms).items():
        index = term_index(term)
        weights[index] = weights.get(index, 0.0) + tf * (K1 + 1) / (tf + norm)
    return _vector(weights)


def query_terms(text: str) -> tuple[list[int], list[float]]:
    """A query's sparse vector: 1 for each distinct term, so the score is the sum of the
    matched terms' BM25 weights in the chunk, times their IDF."""
    return _vector({term_index(term): 1.0 for term in set(words(text))})
