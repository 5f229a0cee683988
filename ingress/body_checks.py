"""What a body must hold beyond its schema, wherever it comes in (its own route, `/v1/requests`,
a batch line): one pure check, so no way in can skip one."""

from __future__ import annotations

from aibroker.errors import InvalidRequest
from aibroker.netguard import host_and_port
from aibroker.routes import LOCAL_ENGINES, RouteTable, resolve
from schemas.bodies import Body
from schemas.openai import EmbeddingsRequest, OcrRequest


def check_body(body: Body, routes: RouteTable, *, vector_store: bool, where: str = "") -> None:
    """Refuse (400, `param` naming the field after `where`) what the schema lets through but
    no pool would carry out:

    - embeddings `store`: a vector store must be configured, and every target of the model must
      be a local embeddings pool (a provider client drops `store`: the vectors would silently
      never be written);
    - OCR `image_url`: an http(s) URL without credentials (the pool fetches it, and checks the
      addresses it resolves to at that time).
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
