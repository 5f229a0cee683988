"""The OpenAI-compatible bodies the broker validates at the door and hands back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ErrorObject(BaseModel):
    """OpenAI's error object: `{"error": {"message", "type", "code", "param"}}`."""

    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorBody(BaseModel):
    error: ErrorObject


class ChatMessage(BaseModel):
    """One message of a chat; content stays as sent (text or a list of parts)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions`: the fields the broker reads are typed, the rest pass through."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=128)
    user: str | None = None


class Usage(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


MAX_EMBEDDING_INPUTS = 2048
"""OpenAI's limit on the number of inputs of one embeddings request."""

EmbeddingInput = str | list[str] | list[int] | list[list[int]]
EmbeddingTask = Literal[
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
]
"""Gemini's embedding task types."""


class VectorStore(BaseModel):
    """Broker extension of `POST /v1/embeddings`: also write the vectors to a Qdrant
    collection (made on first use, cosine distance), one point per input, its text in the
    payload. Ids (integers or strings) default to ones derived from the request, so a request
    redone after a crash overwrites its own points."""

    model_config = ConfigDict(extra="forbid")

    collection: str = Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")
    ids: list[int | str] | None = None
    payloads: list[dict[str, Any]] | None = None


ModerationPart = dict[str, Any]
"""A typed part of a multimodal moderation input: `{"type": "text", "text"}` or
`{"type": "image_url", "image_url": {"url"}}`."""


class ModerationRequest(BaseModel):
    """`POST /v1/moderations`: a text, a list of texts, or typed text and image parts."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=256)
    input: str | list[str] | list[ModerationPart] = Field(min_length=1)


class EmbeddingsRequest(BaseModel):
    """`POST /v1/embeddings`: text, a list of texts, or token ids (one list or several)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=256)
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None
    store: VectorStore | None = None
    task_type: EmbeddingTask | None = Field(
        default=None,
        description="Broker extension: what the vectors are for, where the model takes it "
        "(Gemini's `taskType`); OpenAI-compatible models and local pools have no such input "
        "and ignore it.",
    )

    def input_count(self) -> int:
        """How many vectors the answer holds: one per string or per token list."""
        value = self.input
        if isinstance(value, str) or all(isinstance(item, int) for item in value):
            return 1
        return len(value)

    @model_validator(mode="after")
    def _one_id_and_payload_per_input(self) -> EmbeddingsRequest:
        if self.store is None:
            return self
        count = self.input_count()
        for name in ("ids", "payloads"):
            given = getattr(self.store, name)
            if given is not None and len(given) != count:
                raise ValueError(f"store.{name} must hold one entry per input ({count})")
        return self

    @field_validator("input")
    @classmethod
    def _not_empty(cls, value: EmbeddingInput) -> EmbeddingInput:
        items = [value] if isinstance(value, str) else value
        if not items:
            raise ValueError("input must not be empty")
        if len(items) > MAX_EMBEDDING_INPUTS:
            raise ValueError(f"input may hold at most {MAX_EMBEDDING_INPUTS} items")
        if any(item == "" or item == [] for item in items):
            raise ValueError("input must not contain empty strings or empty token lists")
        return value


class OcrRequest(BaseModel):
    """`POST /v1/ocr` (broker-native): one image, as base64 (or a data URL) or by URL."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=256)
    image: str | None = Field(
        default=None, description="The image bytes as base64, or a `data:image/...;base64,` URL."
    )
    image_url: str | None = Field(
        default=None,
        description="An http(s) URL the OCR pool fetches (public addresses only, size and "
        "time limited).",
        max_length=4096,
    )
    language: str | None = Field(
        default=None, max_length=32, description="A hint for engines with per-language models."
    )

    @model_validator(mode="after")
    def _one_image(self) -> OcrRequest:
        if (self.image is None) == (self.image_url is None):
            raise ValueError("give exactly one of image (base64) and image_url")
        return self
