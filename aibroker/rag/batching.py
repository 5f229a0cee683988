"""How an index job asks for its vectors: the chunks of all its documents, in job order, cut
into embeddings requests of the pool's batch size, a request's id named by what it holds. A
pure plan: the job runs it, several requests in flight, and writes each one's points as they
come back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    """One chunk of one request: the document's place in the job, and the chunk's in it."""

    doc: int
    chunk: int


@dataclass(frozen=True)
class EmbedBatch:
    request_id: str
    """Stable for the same chunks of the same job: a job resumed after a crash asks again
    under the same id, and finds the vectors it paid for before."""
    slots: tuple[Slot, ...]


def embed_batches(job_id: str, documents: list[tuple[str, int]], size: int) -> list[EmbedBatch]:
    """`documents`: (id, chunk count) of each document still to index, in job order. Chunks
    of neighbouring documents share a request, so a job of one-chunk documents sends one
    request per `size` chunks, not one per document. The id hashes the requests' document
    ids and chunk positions: a resumed job that skips the documents it finished cuts its
    requests differently, and then asks under new ids, never reads another request's vectors
    for its own chunks."""
    if size < 1:
        raise ValueError("size must be at least 1")
    slots = [Slot(d, c) for d, (_, count) in enumerate(documents) for c in range(count)]
    batches = []
    for b, first in enumerate(range(0, len(slots), size)):
        part = tuple(slots[first : first + size])
        named = "\x1e".join(f"{documents[s.doc][0]}\x1f{s.chunk}" for s in part)
        digest = hashlib.sha256(named.encode()).hexdigest()[:12]
        batches.append(EmbedBatch(f"{job_id}.e{b}.{digest}", part))
    return batches
