"""Which body each endpoint takes (for the routes that carry another endpoint's body:
`/v1/requests`, batch lines), and which kind of request each body makes."""

from __future__ import annotations

from schemas.envelopes import Kind
from schemas.openai import (
    ChatCompletionRequest,
    EmbeddingsRequest,
    ModerationRequest,
    OcrRequest,
)
from schemas.responses import ResponsesRequest

Body = ChatCompletionRequest | EmbeddingsRequest | OcrRequest | ResponsesRequest | ModerationRequest

BODIES: dict[str, tuple[Kind, type[Body]]] = {
    Kind.CHAT.endpoint: (Kind.CHAT, ChatCompletionRequest),
    Kind.EMBEDDINGS.endpoint: (Kind.EMBEDDINGS, EmbeddingsRequest),
    Kind.OCR.endpoint: (Kind.OCR, OcrRequest),
    Kind.RESPONSES.endpoint: (Kind.RESPONSES, ResponsesRequest),
    Kind.MODERATIONS.endpoint: (Kind.MODERATIONS, ModerationRequest),
}

_KINDS: dict[type[Body], Kind] = {body_type: kind for kind, body_type in BODIES.values()}


def kind_of(body: Body) -> Kind:
    """The kind of request a parsed body makes."""
    return _KINDS[type(body)]
