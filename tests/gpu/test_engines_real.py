"""The GPU engines for real: vLLM with a local model, PaddleOCR on the GPU.

Skipped unless CUDA, the extra and the model are present: set AIBROKER_TEST_VLLM_MODEL to a
local model folder (e.g. Qwen2.5-0.5B-Instruct), AIBROKER_TEST_PADDLE=1 where PaddleOCR's
models are cached.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import os
import time
from typing import Any

import pytest

from aibroker.routes import LocalModel
from aibroker.settings import OcrSettings, VllmSettings
from schemas.chunks import assemble
from schemas.envelopes import Kind, Request, Target

pytestmark = pytest.mark.gpu


def cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def request(kind: Kind, model: str, body: dict[str, Any]) -> Request:
    return Request(
        id=f"req_gpu_{time.time_ns()}",
        tenant="t",
        kind=kind,
        model=model,
        body={"model": model, **body},
        created_at=time.time(),
    )


@pytest.mark.skipif(
    not (
        cuda() and importlib.util.find_spec("vllm") and os.environ.get("AIBROKER_TEST_VLLM_MODEL")
    ),
    reason="needs CUDA, the [vllm] extra and AIBROKER_TEST_VLLM_MODEL",
)
async def test_vllm_answers_and_streams() -> None:
    from consumers.local.vllm.engine import VllmEngine

    served = LocalModel("tiny", "vllm", os.environ["AIBROKER_TEST_VLLM_MODEL"])
    engine = await VllmEngine.start(
        served, VllmSettings(gpu_memory_utilization=0.5, max_model_len=2048)
    )
    try:
        ask = {
            "messages": [{"role": "user", "content": "Say the word 'blue'."}],
            "max_tokens": 16,
            "temperature": 0,
            "n": 2,
            "stop": ["\n\n"],
        }
        done = await engine.generate(
            request(Kind.CHAT, "tiny", ask), Target(provider="vllm", model="tiny")
        )
        assert len(done.response["choices"]) == 2
        assert "blue" in done.response["choices"][0]["message"]["content"].lower()
        assert done.usage is not None
        assert done.usage.completion_tokens > 0
        chunks = [
            c
            async for c in engine.stream(
                request(Kind.CHAT, "tiny", {**ask, "n": 1, "stream": True}),
                Target(provider="vllm", model="tiny"),
            )
        ]
        assert len(chunks) > 1
        assert "blue" in assemble(chunks)["choices"][0]["message"]["content"].lower()
    finally:
        await engine.aclose()


@pytest.mark.skipif(
    not (
        cuda() and importlib.util.find_spec("paddleocr") and os.environ.get("AIBROKER_TEST_PADDLE")
    ),
    reason="needs CUDA, the [paddle] extra and AIBROKER_TEST_PADDLE=1 with cached models",
)
async def test_paddleocr_reads_text() -> None:
    from PIL import Image, ImageDraw, ImageFont

    from consumers.local.ocr.engine import OcrEngine

    image = Image.new("RGB", (640, 140), "white")
    ImageDraw.Draw(image).text(
        (30, 40), "GPU 2026", fill="black", font=ImageFont.load_default(size=52)
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    engine = await OcrEngine.start(
        LocalModel("paddle-en", "ocr", "paddle:en"), OcrSettings(device="gpu:0")
    )
    try:
        body = {"image": base64.b64encode(out.getvalue()).decode()}
        done = await engine.generate(
            request(Kind.OCR, "paddle-en", body), Target(provider="ocr", model="paddle-en")
        )
        assert "GPU2026" in done.response["text"].replace(" ", "")
    finally:
        await engine.aclose()
