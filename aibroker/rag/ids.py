"""Point ids that are the same every time a chunk is indexed: a crash in the middle resumes
by upserting the same points again (no duplicates), and indexing a document again overwrites
its chunks in place."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://aibroker.dev/rag/chunk")
"""The namespace of every chunk's UUID (fixed: changing it would orphan every stored point)."""


def chunk_point_id(collection: str, document_id: str, chunk_index: int) -> str:
    """A UUID (Qdrant takes UUIDs or integers as ids) named by the collection, the document
    and the chunk's position; the separator cannot occur in the first two (they are ids)."""
    if chunk_index < 0:
        raise ValueError("chunk_index must be at least 0")
    return str(uuid.uuid5(NAMESPACE, f"{collection}\x1f{document_id}\x1f{chunk_index}"))
