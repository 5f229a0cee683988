"""What a body must hold beyond its schema, wherever it comes in (its own route, `/v1/requests`,
a batch line): one pure check, so no way in can skip one."""

from __future__ import annotations

from aibroker.errors import InvalidRequest
from aibroker.netguard import host_and_port
from aibroker.responses_wire import check_served, to_chat
from aibroker.routes import LOCAL_ENGINES, RouteTable, RouteTarget, resolve
from schemas.bodies import Body
from schemas.envelopes import Kind
from schemas.openai import EmbeddingsRequest, OcrRequest
from schemas.responses import ResponsesRequest


def check_body(body: Body, routes: RouteTable, *, vector_store: bool, where: str = "") -> None:
    """Refuse (400, `param` naming the field after `where`) what the schema lets through but
    no pool would carry out:

    - embeddings `store`: a vector store must be configured, and every target of the model must
      be a local embeddings pool (a provider client drops `store`: the vectors would silently
      never be written);
    - OCR `image_url`: an http(s) URL without credentials (the pool fetches it, and checks the
      addresses it resolves to at that time);
    - Responses API: what no target is sent yet, and what a chat API cannot honour when the
      model may be served over chat (`responses_wire.to_chat`).
    """
    if isinstance(body, EmbeddingsRequest) and body.store is not None:
        param = f"{where}store"
        if not vector_store:
            raise InvalidRequest("No vector store is configured for embeddings.", param=param)
        if any(t.provider not in LOCAL_ENGINES for t in resolve(body.model, routes).targets):
            raise InvalidRequest(
                f"`store` is served by local embeddings pools only, and '{body.model}' may "
                "be sent to a provider.",
                param=param,
            )
    elif isinstance(body, OcrRequest) and body.image_url is not None:
        host_and_port(body.image_url, f"{where}image_url")
    elif isinstance(body, ResponsesRequest):
        _check_responses(body, routes, where)


def _check_responses(body: ResponsesRequest, routes: RouteTable, where: str) -> None:
    """What the Responses API asks that no target is sent yet, and, where a target of the
    model is served over chat, each field chat cannot honour."""
    sent = body.model_dump(exclude_unset=True)
    try:
        check_served(sent)
        passthrough = [_passthrough(t.provider, routes) for t in _targets(body, routes)]
        if not all(passthrough):
            to_chat(sent)
    except InvalidRequest as exc:
        if where and exc.param:
            exc.param = f"{where}{exc.param}"
        raise


def _targets(body: ResponsesRequest, routes: RouteTable) -> list[RouteTarget]:
    return resolve(body.model, routes, Kind.RESPONSES).targets


def _passthrough(provider: str, routes: RouteTable) -> bool:
    config = routes.providers.get(provider)
    return config is not None and config.responses_api
