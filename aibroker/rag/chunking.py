"""Text to chunks of at most `size_tokens` tokens, each sharing up to `overlap_tokens` with the
one before, cut at a paragraph where one falls in the chunk's second half, else at a line or
sentence end, else between words: a chunk reads as whole sentences where the text allows it.

Tokens are estimated (`estimate_tokens`), not counted by a tokenizer: the estimate follows
BERT's WordPiece (all-MiniLM-L6-v2's), is measured against it on the labelled retrieval set
and the project's own docs (`tests/unit/test_rag_chunking.py`: a few per cent over in
total, long texts within 5 per cent, short ones from 0.6 to 1.6 times), needs no model files
and is the same in every process, so a document chunked again on another worker gives the same
chunks, and so the same point ids. A size a little under the model's window (MiniLM: 256)
leaves room for the estimate's error; past the window the model truncates, it does not fail.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    index: int
    """Position in the document, from 0: with the document id, the point's id."""
    text: str
    """`source[start:end]`, exactly."""
    start: int
    """Offset of the first character in the source text."""
    end: int
    """Offset just past the last character."""


_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_PIECES = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")
"""BERT's pre-tokenizer: every CJK character and every punctuation mark alone, runs of word
characters together."""
WHOLE = 6
"""Letters a word may have and still be one WordPiece token, as most common words are."""
PER_PIECE = 4
"""Letters a further `##` piece of a longer word stands for."""
DIGITS_PER_PIECE = 2
"""Digits one piece of a number stands for (WordPiece splits long numbers in threes, but
keeps many years whole: an over-count on the safe side)."""


def estimate_tokens(text: str) -> int:
    """WordPiece tokens `text` is about (no [CLS]/[SEP]): one per punctuation mark, CJK
    character or short word, more for long words and numbers."""
    total = 0
    for match in _PIECES.finditer(text):
        piece = match.group()
        if piece.isdigit():
            total += math.ceil(len(piece) / DIGITS_PER_PIECE)
        elif len(piece) <= WHOLE:
            total += 1
        else:
            total += 1 + math.ceil((len(piece) - WHOLE) / PER_PIECE)
    return total


PARAGRAPH, LINE, WORD = 2, 1, 0
"""How strong the boundary before a unit is: a cut is made at the strongest one that fits."""


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    boundary: int


_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile("[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)\\]]*$")
"""A sentence's end: `.`, `!`, `?`, an ellipsis or a CJK full stop, then closing quotes."""
_WORD = re.compile(r"\S+")


def _spans(text: str, pattern: re.Pattern[str], start: int, end: int) -> Iterator[tuple[int, int]]:
    """The stretches of `text[start:end]` between matches of `pattern`, stripped, none empty."""
    at = start
    for match in pattern.finditer(text, start, end):
        yield from _stripped(text, at, match.start())
        at = match.end()
    yield from _stripped(text, at, end)


def _stripped(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    piece = text[start:end]
    if piece.strip():
        lead = len(piece) - len(piece.lstrip())
        yield start + lead, start + len(piece.rstrip())


def _sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """A paragraph's lines and sentences: cut at a line break, or at a space after `.`, `!`,
    `?` (an abbreviation cuts too: the pieces are packed together again)."""
    at = start
    for match in _SPACE.finditer(text, start, end):
        # The stop and its closing quotes are the few characters before the space.
        before = max(at, match.start() - 8)
        if "\n" in match.group() or _SENTENCE_END.search(text, before, match.start()):
            yield at, match.start()
            at = match.end()
    yield at, end


def _units(text: str, size: int) -> Iterator[_Unit]:
    for para_start, para_end in _spans(text, _BLANK_LINE, 0, len(text)):
        boundary = PARAGRAPH
        for start, end in _sentences(text, para_start, para_end):
            tokens = estimate_tokens(text[start:end])
            if tokens <= size:
                yield _Unit(start, end, tokens, boundary)
            else:
                yield from _words(text, start, end, size, boundary)
            boundary = LINE


def _words(text: str, start: int, end: int, size: int, boundary: int) -> Iterator[_Unit]:
    """A sentence too long for one chunk, word by word; a word too long (a blob), in pieces of
    `size` characters (no character is more than one token)."""
    for match in _WORD.finditer(text, start, end):
        for at in range(match.start(), match.end(), size):
            stop = min(at + size, match.end())
            yield _Unit(at, stop, estimate_tokens(text[at:stop]), boundary)
            boundary = WORD


def _cut(units: list[_Unit], first: int, stop: int, size: int) -> int:
    """Where the chunk `units[first:stop]` (full: `units[stop]` does not fit) ends: before the
    strongest boundary that leaves it at least half full, the latest of equals."""
    best = stop
    filled = sum(unit.tokens for unit in units[first:stop])
    for at in range(stop - 1, first, -1):
        filled -= units[at].tokens
        if filled * 2 < size:
            break
        if units[at].boundary > units[best].boundary:
            best = at
    return best


def chunk_text(text: str, *, size_tokens: int, overlap_tokens: int) -> list[Chunk]:
    """`text` in chunks of at most `size_tokens` estimated tokens, each starting with up to
    `overlap_tokens` of the previous one's end (whole units: sentences, or words of a long
    sentence). Text with nothing but whitespace has no chunks."""
    if size_tokens < 1:
        raise ValueError("size_tokens must be at least 1")
    if not 0 <= overlap_tokens < size_tokens:
        raise ValueError("overlap_tokens must be at least 0 and less than size_tokens")
    units = list(_units(text, size_tokens))
    chunks: list[Chunk] = []
    first = 0
    while first < len(units):
        stop, filled = first, 0
        while stop < len(units) and filled + units[stop].tokens <= size_tokens:
            filled += units[stop].tokens
            stop += 1
        if stop < len(units):
            stop = _cut(units, first, stop, size_tokens)
        start, end = units[first].start, units[stop - 1].end
        chunks.append(Chunk(len(chunks), text[start:end], start, end))
        if stop == len(units):
            break
        # The next chunk starts with the last units of this one, as many as the overlap
        # holds, and always after this one's first (each chunk moves forward).
        previous, first, shared = first, stop, 0
        while first - 1 > previous and shared + units[first - 1].tokens <= overlap_tokens:
            shared += units[first - 1].tokens
            first -= 1
    return chunks
