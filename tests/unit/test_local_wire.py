"""Pure parts of the local pools: embeddings and OCR shaping, the vLLM request mapping,
local-model routing."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest

from aibroker.errors import BrokerError, InvalidRequest, ModelNotFound
from aibroker.routes import build_route_table, resolve
from aibroker.settings import EmbeddingsSettings, OcrSettings, Settings, VllmSettings
from consumers.local.embeddings.wire import (
    embeddings_response,
    encode_vector,
    fit_dimensions,
    input_texts,
)
from consumers.local.ocr.wire import BadImage, TextLine, image_bytes, ocr_response, reading_order
from consumers.local.vllm.wire import (
    Choice,
    chat_messages,
    chat_response,
    delta_chunk,
    sampling_options,
)
from schemas.envelopes import Kind, Target
from schemas.openai import EmbeddingsRequest
from topics.catalog import TopicNames

pytestmark = pytest.mark.unit


def body(**fields: Any) -> EmbeddingsRequest:
    return EmbeddingsRequest.model_validate({"model": "m", **fields})


@pytest.mark.parametrize(
    ("value", "texts"),
    [
        ("one", ["one"]),
        (["a", "b"], ["a", "b"]),
        ([1, 2, 3], ["<1 2 3>"]),
        ([[1], [2, 3]], ["<1>", "<2 3>"]),
    ],
)
def test_input_texts(value: Any, texts: list[str]) -> None:
    def decode(ids: list[int]) -> str:
        return "<" + " ".join(map(str, ids)) + ">"

    assert input_texts(body(input=value), decode) == texts


@pytest.mark.parametrize("value", ["", [], [""], [[]], ["x"] * 2049])
def test_empty_or_oversized_inputs_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="input"):
        body(input=value)


def test_dimensions_cut_and_renormalise() -> None:
    vector = np.array([3.0, 4.0, 12.0], dtype=np.float32)
    cut = fit_dimensions(vector, 2)
    assert np.allclose(cut, [0.6, 0.8])
    assert fit_dimensions(vector, None) is vector
    with pytest.raises(InvalidRequest) as raised:
        fit_dimensions(vector, 4)
    assert raised.value.param == "dimensions"


def test_base64_is_little_endian_float32() -> None:
    vector = np.array([1.5, -2.0], dtype=np.float32)
    packed = encode_vector(vector, "base64")
    assert isinstance(packed, str)
    assert np.array_equal(np.frombuffer(base64.b64decode(packed), "<f4"), vector)
    assert encode_vector(vector, "float") == [1.5, -2.0]


def test_embeddings_response_is_openai_shaped() -> None:
    vectors = [np.array([1.0, 0.0], dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32)]
    answer = embeddings_response("m", body(input=["a", "b"]), vectors, tokens=7)
    assert answer["object"] == "list"
    assert [d["index"] for d in answer["data"]] == [0, 1]
    assert answer["usage"] == {"prompt_tokens": 7, "total_tokens": 7}


def line(text: str, x: float, y: float, h: float = 20) -> TextLine:
    return TextLine(text, 0.9, [[x, y], [x + 50, y], [x + 50, y + h], [x, y + h]])


def test_reading_order_groups_rows_left_to_right() -> None:
    lines = [line("world", 200, 12), line("second", 10, 60), line("hello", 10, 10)]
    rows = reading_order(lines)
    assert [[ln.text for ln in row] for row in rows] == [["hello", "world"], ["second"]]
    image = np.zeros((100, 300, 3), dtype=np.uint8)
    answer = ocr_response("m", lines, image)
    assert answer["text"] == "hello world\nsecond"
    assert answer["usage"] == {"images": 1, "pixels": 30000}


def test_image_bytes_accepts_base64_and_data_urls() -> None:
    raw = b"\x89PNG..."
    encoded = base64.b64encode(raw).decode()
    assert image_bytes(encoded, 100) == raw
    assert image_bytes("data:image/png;base64," + encoded, 100) == raw
    with pytest.raises(BadImage, match="larger"):
        image_bytes(base64.b64encode(b"x" * 200).decode(), 100)
    with pytest.raises(BadImage, match="base64-encoded"):
        image_bytes("data:image/png,rawbytes", 100)


def test_decode_image_refuses_too_many_pixels() -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    from consumers.local.ocr.wire import decode_image

    out = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(out, "PNG")
    assert decode_image(out.getvalue(), 20_000).shape == (100, 200, 3)
    with pytest.raises(BadImage, match="200x100"):
        decode_image(out.getvalue(), 19_999)


def test_sampling_options_map_openai_names() -> None:
    options = sampling_options(
        {
            "model": "m",
            "messages": [],
            "temperature": 0.2,
            "max_completion_tokens": 64,
            "stop": "END",
            "n": 2,
            "seed": 7,
            "top_k": 5,
            "user": "u",
            "response_format": {"type": "text"},
        }
    )
    assert options == {
        "temperature": 0.2,
        "max_tokens": 64,
        "stop": ["END"],
        "n": 2,
        "seed": 7,
        "top_k": 5,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tools", [{"type": "function"}]),
        ("logprobs", True),
        ("response_format", {"type": "json_object"}),
        ("made_up", 1),
    ],
)
def test_unsupported_parameters_are_refused_by_name(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as raised:
        sampling_options({"model": "m", field: value})
    assert raised.value.param == field


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def test_chat_messages_for_the_template() -> None:
    shaped = chat_messages(
        [
            {"role": "developer", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}],
            },
        ]
    )
    assert shaped == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi there"},
    ]
    with pytest.raises(InvalidRequest) as raised:
        chat_messages([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])
    assert raised.value.param == "messages[0].content"


def test_chat_response_and_deltas() -> None:
    choices = [Choice(0, "hello", 2, "stop"), Choice(1, "hey", 1, "length")]
    answer = chat_response("r1", "m", choices, prompt_tokens=5)
    assert answer["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert [c["finish_reason"] for c in answer["choices"]] == ["stop", "length"]
    first = delta_chunk("r1", "m", Choice(0, "hel", 1, None), 0, first=True)
    assert first["choices"][0]["delta"] == {"content": "hel", "role": "assistant"}
    rest = delta_chunk("r1", "m", Choice(0, "hello", 2, "stop"), 3, first=False)
    assert rest["choices"][0] == {"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}


def local_settings() -> Settings:
    return Settings(
        embeddings=EmbeddingsSettings(models={"MiniLM": "all-minilm-l6-v2"}),
        ocr=OcrSettings(models={"pp-ocrv4": "rapidocr"}),
        vllm=VllmSettings(models={"qwen": "Qwen/Qwen2.5-0.5B-Instruct"}),
    )


def test_local_models_resolve_by_served_name_and_by_engine() -> None:
    table = build_route_table(local_settings())
    assert resolve("MiniLM", table, Kind.EMBEDDINGS).plain() == [
        Target(provider="embed", model="MiniLM")
    ]
    assert resolve("ocr/pp-ocrv4", table, Kind.OCR).plain() == [
        Target(provider="ocr", model="pp-ocrv4")
    ]
    assert resolve("qwen", table, Kind.CHAT).plain() == [Target(provider="vllm", model="qwen")]
    with pytest.raises(ModelNotFound):
        resolve("ocr/MiniLM", table)
    with pytest.raises(BrokerError) as raised:
        resolve("MiniLM", table, Kind.CHAT)
    assert raised.value.error_code == "model_not_supported"


def test_each_local_model_has_its_own_topic() -> None:
    table = build_route_table(local_settings())
    names = TopicNames("aib.")
    assert table.dispatch_topics(names) == [
        "aib.dispatch.embed.minilm",
        "aib.dispatch.ocr.pp-ocrv4",
        "aib.dispatch.vllm.qwen",
    ]


@pytest.mark.parametrize(
    "settings",
    [
        Settings(embeddings=EmbeddingsSettings(models={"bad/name": "x"})),
        Settings(
            embeddings=EmbeddingsSettings(models={"x": "a"}),
            ocr=OcrSettings(models={"x": "rapidocr"}),
        ),
        Settings(providers={"embed": {"base_url": "http://x", "api_key": "k"}}),
    ],
)
def test_bad_local_configuration_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match=r"local|reserved"):
        build_route_table(settings)
