"""The local pools end to end: real all-MiniLM-L6-v2 embeddings and real RapidOCR through
ingress, dispatcher, the pools and the results path."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from loadtest.stack import Stack
from tests.e2e.conftest import running_stack
from tests.services import KafkaService, RedisService

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.smoke]
pytest.importorskip("sentence_transformers", reason="needs the [embeddings] extra")
pytest.importorskip("rapidocr_onnxruntime", reason="needs the [ocr] extra")


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """This module's broker also runs the embeddings and OCR pools."""
    logs = tmp_path_factory.mktemp("local")
    with running_stack(kafka, redis_svc, logs, embeddings=True, ocr=True) as running:
        yield running


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=120) as c:
        yield c


def cosine(a: list[float], b: list[float]) -> float:
    x, y = np.array(a), np.array(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


async def test_embeddings_through_the_official_sdk(sdk: openai.AsyncOpenAI) -> None:
    texts = [
        "The cat sits on the mat.",
        "A kitten is resting on a rug.",
        "Quarterly revenue grew by eight percent.",
    ]
    answer = await sdk.embeddings.create(model="all-minilm-l6-v2", input=texts)
    vectors = [d.embedding for d in answer.data]
    assert [d.index for d in answer.data] == [0, 1, 2]
    assert all(len(v) == 384 for v in vectors)
    assert answer.usage.prompt_tokens > len(texts)  # real token counts, special tokens included
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.3
    again = await sdk.embeddings.create(model="all-minilm-l6-v2", input=texts[0])
    assert np.allclose(again.data[0].embedding, vectors[0], atol=1e-5)  # deterministic


async def test_embeddings_base64_and_dimensions(http: httpx.AsyncClient) -> None:
    body = {"model": "all-minilm-l6-v2", "input": "hello world"}
    floats = (await http.post("/v1/embeddings", json=body)).json()["data"][0]["embedding"]
    packed = await http.post("/v1/embeddings", json={**body, "encoding_format": "base64"})
    decoded = np.frombuffer(base64.b64decode(packed.json()["data"][0]["embedding"]), "<f4")
    assert np.allclose(decoded, floats, atol=1e-6)
    short = await http.post("/v1/embeddings", json={**body, "dimensions": 64})
    vector = np.array(short.json()["data"][0]["embedding"])
    assert vector.shape == (64,)
    assert abs(np.linalg.norm(vector) - 1) < 1e-5


async def test_embedding_refusals_name_the_parameter(http: httpx.AsyncClient) -> None:
    too_wide = await http.post(
        "/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": "x", "dimensions": 4096}
    )
    assert too_wide.status_code == 400
    assert too_wide.json()["error"]["param"] == "dimensions"
    wrong_kind = await http.post(
        "/v1/chat/completions",
        json={"model": "all-minilm-l6-v2", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert wrong_kind.status_code == 400
    assert wrong_kind.json()["error"]["code"] == "model_not_supported"


async def test_many_concurrent_embedding_requests_are_batched(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    import asyncio

    texts = [f"sentence number {i} about message brokers" for i in range(48)]
    answers = await asyncio.gather(
        *(
            http.post("/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": t})
            for t in texts
        )
    )
    assert [a.status_code for a in answers] == [200] * len(texts)
    port = stack.metrics_ports["embed"]
    metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    sizes = _histogram(metrics, "aibroker_batch_items", "embed.all-minilm-l6-v2")
    assert sizes["count"] < sizes["sum"], "no model call held more than one text"


def _histogram(text: str, name: str, pool: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in text.splitlines():
        for part in ("count", "sum"):
            if line.startswith(f'{name}_{part}{{pool="{pool}"}}'):
                found[part] = float(line.split()[-1])
    return found


def draw_text(lines: list[str]) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (720, 90 * len(lines) + 40), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=52)
    for i, line in enumerate(lines):
        draw.text((30, 30 + 90 * i), line, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def test_ocr_reads_text_the_test_drew(http: httpx.AsyncClient) -> None:
    image = base64.b64encode(draw_text(["INVOICE 2026", "total due 42"])).decode()
    answer = await http.post("/v1/ocr", json={"model": "pp-ocrv4", "image": image})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["object"] == "ocr.result"
    text = result["text"].lower().replace(" ", "")
    assert "invoice2026" in text
    assert "totaldue42" in text
    assert text.index("invoice") < text.index("total")  # reading order
    assert all(0 < line["confidence"] <= 1 and len(line["box"]) == 4 for line in result["lines"])


async def test_ocr_accepts_a_data_url_asynchronously(http: httpx.AsyncClient) -> None:
    image = "data:image/png;base64," + base64.b64encode(draw_text(["ASYNC 7"])).decode()
    submitted = await http.post(
        "/v1/requests", json={"endpoint": "/v1/ocr", "body": {"model": "pp-ocrv4", "image": image}}
    )
    assert submitted.status_code == 202
    done = await http.get(f"/v1/requests/{submitted.json()['id']}", params={"wait": 60})
    assert done.json()["status"] == "succeeded"
    assert "ASYNC7" in done.json()["response"]["text"].replace(" ", "")


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        (
            {"image": base64.b64encode(b"plain text, not a picture").decode()},
            "image",
            "not an image",
        ),
        (
            {"image": base64.b64encode(draw_text(["CUT SHORT"])[:300]).decode()},
            "image",
            "corrupt",
        ),
        ({"image": "%%%"}, "image", "base64"),
        ({"image_url": "http://127.0.0.1:1/secret.png"}, "image_url", "non-public"),
        ({"image_url": "ftp://example.com/a.png"}, "image_url", "http"),
    ],
)
async def test_bad_images_get_400_with_the_reason(
    http: httpx.AsyncClient, body: dict[str, str], param: str, needle: str
) -> None:
    answer = await http.post("/v1/ocr", json={"model": "pp-ocrv4", **body})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param
    assert needle in error["message"]


def test_pool_refuses_an_unconfigured_model(stack: Stack, tmp_path: Path) -> None:
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "aibroker", "consumer", "embeddings", "--model", "nope"],
        env=stack.env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert run.returncode != 0
    assert b"not a configured embed model" in run.stderr
