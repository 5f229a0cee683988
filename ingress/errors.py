"""Every error leaves ingress as an OpenAI-style error object with the status that fits."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from aibroker.errors import BrokerError, Unavailable
from aibroker.telemetry import metrics
from ingress.retry_headers import retry_headers
from schemas.openai import ErrorBody

log = logging.getLogger(__name__)

_TYPES = {
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
}


_MEANING = {
    400: "Invalid request (the error's `param` names the field).",
    401: "Missing or unknown API key.",
    403: "The key may not use this model or resource.",
    404: "No such model, request, file or batch (another tenant's ids included).",
    408: "The request's deadline passed before it ran.",
    409: "The request was cancelled.",
    413: "The body is larger than the broker accepts.",
    429: "A rate, concurrency or budget limit; `Retry-After` says when to retry.",
    500: "The broker failed on this request (it is kept in the DLQ).",
    502: "The provider failed, or refused the broker's credentials.",
    503: "Kafka or Redis cannot be reached, or every target is down; see `Retry-After`.",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": meaning} for status, meaning in _MEANING.items()
}
"""The error statuses every route may answer, for the OpenAPI document."""


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": type_, "code": code, "param": param}}
    )


def error_response(exc: BrokerError) -> Response:
    headers = retry_headers(exc.retryable, exc.retry_after)
    return refusal(exc.http_status, exc.message, exc.type, exc.error_code, exc.param, headers)


def refusal(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error answered by ingress itself (counted), as an OpenAI-style error object."""
    metrics.REFUSED.labels(str(status), code or "none").inc()
    return Response(
        error_body(message, type_, code, param),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _param(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(BrokerError)
    async def broker_error(_: Request, exc: BrokerError) -> Response:
        return error_response(exc)

    @app.exception_handler(RedisError)
    async def redis_down(_: Request, exc: RedisError) -> Response:
        """Redis is needed for this call (keys, state, idempotency) and cannot be reached.
        Paths that can do without it (accepting work) handle the error themselves."""
        return error_response(
            Unavailable("Request state is unavailable right now; retry shortly.", retry_after=2)
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = _param(tuple(first.get("loc", ())))
        if first.get("type") == "json_invalid":
            message, param = "The request body is not valid JSON.", ""
        elif first.get("type") == "model_attributes_type" and param == "":
            message = "The request body must be a JSON object (Content-Type: application/json)."
        else:
            message = f"{param or 'body'}: {first.get('msg', 'invalid value')}"
        return refusal(
            400,
            message,
            "invalid_request_error",
            "invalid_value",
            param or None,
            retry_headers(False, None),
        )

    @app.exception_handler(Exception)
    async def bug(_: Request, exc: Exception) -> Response:
        """A bug: still an OpenAI-style error (the traceback goes to the log)."""
        log.error("unhandled %s on a request", type(exc).__name__, exc_info=exc)
        return refusal(
            500,
            "The broker failed on this request.",
            "server_error",
            "internal_error",
            headers=retry_headers(False, None),
        )

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> Response:
        type_ = _TYPES.get(
            exc.status_code, "invalid_request_error" if exc.status_code < 500 else "server_error"
        )
        code = {413: "payload_too_large", 404: "not_found"}.get(exc.status_code)
        headers = {**retry_headers(False, None), **(exc.headers or {})}
        return refusal(exc.status_code, str(exc.detail), type_, code, None, headers)
