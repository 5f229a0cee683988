"""Retrieval's settings (`AIBROKER_RAG_*`): where the RAG worker keeps its vectors, the
embedding model and chunking a collection gets unless it names its own, and search bounds."""

from __future__ import annotations

from aibroker.settings.base import SettingsGroup


class RagSettings(SettingsGroup):
    qdrant_url: str | None = None
    """Qdrant of the RAG collections: `http://qdrant:6333`, or a directory for qdrant-client's
    local mode (the RAG worker is then the one process that opens it). Unset: the RAG worker
    refuses to start. `aibroker dev` sets a directory under its data dir."""
    qdrant_api_key: str | None = None
    """API key of a Qdrant server."""
    embedding_model: str = "all-minilm-l6-v2"
    """The embedding model alias (a route) a collection is bound to unless it names one."""
    chunk_tokens: int = 256
    """Chunk size in tokens a collection gets unless it sets its own."""
    overlap_tokens: int = 32
    """Tokens two neighbouring chunks share, unless the collection sets its own."""
    max_top_k: int = 50
    """The most results one search returns, whatever it asks for."""
    embed_batch: int = 64
    """Chunks per embeddings request an index job sends through the dispatcher."""
    embed_timeout_s: float = 120.0
    """How long one embeddings request of an index job may take before the job fails."""
    wait_s: float = 30.0
    """How long a route waits for the RAG worker's answer to a short operation (create,
    search, stats) before it answers 504."""
    concurrency: int = 8
    """RAG operations one worker runs at once (index jobs and searches together)."""
