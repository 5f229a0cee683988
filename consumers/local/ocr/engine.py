"""The OCR engine: images by base64 or URL, recognised in micro-batches.

Two backends run the PP-OCR models: RapidOCR (ONNX Runtime, CPU; the `[ocr]` extra, models
inside the wheel) and PaddleOCR (the `[paddle]` extra, GPU when Paddle was built with CUDA).
Only this module imports either, and only the chosen one.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from aibroker.errors import InvalidRequest
from aibroker.netguard import FetchLimits, fetch
from aibroker.routes import LocalModel
from aibroker.settings import OcrSettings
from consumers.local.ocr.wire import Image, TextLine, decode_image, image_bytes, ocr_response
from consumers.pool.batcher import BatchLimits, MicroBatcher, model_thread
from consumers.pool.engine import BatchedEngine, Completion
from schemas.envelopes import Request, Target
from schemas.openai import OcrRequest


class Backend(Protocol):
    languages: frozenset[str]
    max_batch: int
    """The most images one call takes to any advantage."""

    def recognise(self, images: list[Image]) -> list[list[TextLine]]:
        """One model call over a batch of images (on the batcher's thread)."""
        ...


class RapidOcrBackend:
    """PP-OCRv4 (Chinese and English in one model) through ONNX Runtime."""

    languages = frozenset({"ch", "en"})
    max_batch = 1
    """RapidOCR reads one image a call: a batch would only make the first wait for the last."""

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self._ocr = RapidOCR()

    def recognise(self, images: list[Image]) -> list[list[TextLine]]:
        # RapidOCR takes one image a call; the batch still saves the per-request overhead.
        return [self._one(image) for image in images]

    def _one(self, image: Image) -> list[TextLine]:
        found, _ = self._ocr(image)
        return [
            TextLine(text=str(text), confidence=float(score), box=_box(box))
            for box, text, score in (found or [])
        ]


class PaddleOcrBackend:
    """PaddleOCR 3's pipeline (detection + recognition), one `predict` per batch."""

    def __init__(self, language: str, device: str) -> None:
        from paddleocr import PaddleOCR

        options: dict[str, Any] = {
            "lang": language,
            "use_doc_orientation_classify": False,
            "use_doc_unwarping": False,
            "use_textline_orientation": False,
        }
        if device != "auto":
            options["device"] = device
        self._ocr = PaddleOCR(**options)
        self.languages = frozenset({language})
        self.max_batch = 64  # `predict` batches detection and recognition

    def recognise(self, images: list[Image]) -> list[list[TextLine]]:
        # PaddleOCR expects BGR, as OpenCV reads images.
        results = self._ocr.predict([image[:, :, ::-1] for image in images])
        return [
            [
                TextLine(text=str(t), confidence=float(s), box=_box(p))
                for t, s, p in zip(r["rec_texts"], r["rec_scores"], r["rec_polys"], strict=True)
            ]
            for r in results
        ]


def load_backend(source: str, device: str) -> Backend:
    """`rapidocr`, `paddle` or `paddle:<lang>`; SystemExit naming the extra if not installed."""
    engine, _, language = source.partition(":")
    if engine == "rapidocr":
        if importlib.util.find_spec("rapidocr_onnxruntime") is None:
            raise SystemExit(
                "the rapidocr OCR engine needs the [ocr] extra: pip install 'aibroker[ocr]'"
            )
        return RapidOcrBackend()
    if engine == "paddle":
        if importlib.util.find_spec("paddleocr") is None:
            raise SystemExit(
                "the paddle OCR engine needs the [paddle] extra (pip install 'aibroker[paddle]') "
                "and paddlepaddle or paddlepaddle-gpu"
            )
        return PaddleOcrBackend(language or "en", device)
    raise SystemExit(f"unknown OCR engine '{source}': use rapidocr, paddle or paddle:<lang>")


class OcrEngine(BatchedEngine):
    what = "OCR"

    def __init__(
        self, served: LocalModel, backend: Backend, cfg: OcrSettings, thread: ThreadPoolExecutor
    ) -> None:
        self.served = served
        self._thread = thread
        self._backend = backend
        self._cfg = cfg
        self._fetch = FetchLimits.build(cfg.max_image_bytes, cfg.fetch_timeout_s, cfg.fetch_allow)
        size = min(cfg.max_batch, backend.max_batch)
        limits = BatchLimits(size, size * 4_000_000, cfg.max_wait_ms / 1000)
        self._batcher = MicroBatcher[Image, list[TextLine]](
            backend.recognise, limits, cost=_pixels, pool=f"ocr.{served.name}", executor=thread
        )

    @classmethod
    async def start(cls, served: LocalModel, cfg: OcrSettings) -> OcrEngine:
        thread = model_thread(f"ocr.{served.name}")  # loads the model and runs every batch
        backend = await asyncio.get_running_loop().run_in_executor(
            thread, load_backend, served.source, cfg.device
        )
        engine = cls(served, backend, cfg, thread)
        engine._batcher.start()
        return engine

    async def generate(self, request: Request, target: Target) -> Completion:
        body = self._parse(OcrRequest, request.body)
        if body.language is not None and body.language not in self._backend.languages:
            known = ", ".join(sorted(self._backend.languages))
            raise InvalidRequest(
                f"'{target.model}' reads {known}, not '{body.language}'", param="language"
            )
        image = await self._image(body)
        (lines,) = await self._batcher.submit([image])
        return Completion(ocr_response(target.model, lines, image), None)

    async def _image(self, body: OcrRequest) -> Image:
        if body.image is not None:
            data, param = image_bytes(body.image, self._cfg.max_image_bytes), "image"
        else:
            assert body.image_url is not None
            data = await fetch(body.image_url, self._fetch, param="image_url")
            param = "image_url"
        return await asyncio.to_thread(decode_image, data, self._cfg.max_pixels, param)


def _box(points: Sequence[Sequence[float]]) -> list[list[float]]:
    return [[round(float(x), 1), round(float(y), 1)] for x, y in points]


def _pixels(image: Image) -> int:
    return int(image.shape[0] * image.shape[1])
