"""The grounded prompt: the hits as numbered sources, the question after them, and a system
message that holds the model to those sources and asks for `[n]` citations; `sources` is what
the answer lists beside it, numbered the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aibroker.rag.index import Hit

SYSTEM = (
    "Answer the question using only the numbered sources below. Cite the sources you use "
    "with their numbers in square brackets, like [1] or [2][3], right after the statement "
    "they support. If the sources do not contain the answer, say that you do not know "
    "rather than guessing."
)


def grounded_messages(
    question: str, hits: Sequence[Hit], *, instructions: str | None = None
) -> list[dict[str, Any]]:
    """Chat messages for a grounded answer: the system rule (then the caller's own
    `instructions`, which may shape the answer but come after the rule), and one user
    message with the sources, numbered from 1 in rank order, before the question."""
    system = SYSTEM if not instructions else f"{SYSTEM}\n\n{instructions.strip()}"
    if hits:
        numbered = "\n\n".join(f"[{n}] {hit.text.strip()}" for n, hit in enumerate(hits, 1))
        user = f"Sources:\n\n{numbered}\n\nQuestion: {question.strip()}"
    else:
        user = f"Sources: none were found.\n\nQuestion: {question.strip()}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def sources(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """The sources as the answer lists them: `index` is the `[n]` the model cites."""
    return [
        {
            "index": n,
            "document_id": hit.document_id,
            "chunk_index": hit.chunk_index,
            "score": hit.score,
            "text": hit.text,
            "metadata": hit.metadata,
        }
        for n, hit in enumerate(hits, 1)
    ]
