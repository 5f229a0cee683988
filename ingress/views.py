"""How requests and results look on the wire: the status document and the HTTP answer."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from ingress.errors import error_body
from ingress.retry_headers import retry_headers
from schemas.envelopes import CacheMark, Result, Status
from schemas.status import status_document


def accepted(request_id: str, status: Status = Status.QUEUED) -> Response:
    """202: the request is safe in Kafka; poll its URL for the result."""
    doc = status_document(request_id, status, None)
    return Response(
        orjson.dumps(doc),
        status_code=202,
        media_type="application/json",
        headers={"Location": doc["url"], **accepted_headers(request_id)},
    )


ACCEPTED_HEADER = "x-aibroker-request-id"
"""On an answer about a request the broker accepted (written to Kafka), and only there: its id.
`x-request-id` is on every answer, refusals included, to quote in a support ticket."""


def accepted_headers(request_id: str) -> dict[str, str]:
    return {"x-request-id": request_id, ACCEPTED_HEADER: request_id}


CACHE_HEADER = "x-aibroker-cache"
"""On every answer with a result: `hit`, `semantic`, `miss` or `bypass` (what the response
cache did)."""
SCORE_HEADER = "x-aibroker-cache-score"
"""On a semantic hit: the similarity of its prompt to the one whose answer it got."""


def cache_header(mark: CacheMark | None, score: float | None = None) -> dict[str, str]:
    headers = {CACHE_HEADER: (mark or CacheMark.BYPASS).value}
    if score is not None:
        headers[SCORE_HEADER] = f"{score:.4f}"
    return headers


def json_response(doc: dict[str, Any], status_code: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status_code, media_type="application/json")


def result_response(result: Result) -> Response:
    """A finished sync call: the provider's body on success, an error object otherwise."""
    headers = accepted_headers(result.id) | cache_header(result.cache, result.cache_score)
    if result.cost_usd is not None:
        headers["x-aibroker-cost"] = str(result.cost_usd)
    if result.status is Status.SUCCEEDED and result.response is not None:
        return Response(
            orjson.dumps(result.response), media_type="application/json", headers=headers
        )
    error = result.error
    message = error.message if error else f"The request ended as {result.status.value}."
    type_ = error.type if error else "server_error"
    body = error_body(message, type_, error.code if error else None, error.param if error else None)
    status_code = error.http_status if error else 500
    headers |= retry_headers(bool(error and error.retryable), error.retry_after if error else None)
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)
