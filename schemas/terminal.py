"""The terminal result of a request, made from its envelope: how every service ends one."""

from __future__ import annotations

import time

from schemas.envelopes import ErrorInfo, Request, Result, Status


def terminal(
    request: Request,
    status: Status,
    *,
    error: ErrorInfo | None = None,
    response: dict[str, object] | None = None,
) -> Result:
    now = time.time()
    return Result(
        id=request.id,
        tenant=request.tenant,
        status=status,
        error=error,
        response=response,
        served_by=request.target,
        attempts=request.attempt,
        total_ms=round((now - request.created_at) * 1000, 3),
        finished_at=now,
        webhook=request.webhook,
        batch_id=request.batch_id,
        custom_id=request.custom_id,
        cache=request.cache_mark,
        cache_score=request.cache_score,
        internal=request.internal,
    )


def expired_error() -> ErrorInfo:
    return ErrorInfo(
        message="The request's deadline passed before it could run.",
        type="timeout_error",
        code="deadline_exceeded",
        http_status=408,
    )


def cancelled_error() -> ErrorInfo:
    return ErrorInfo(
        message="The request was cancelled by the client.",
        type="invalid_request_error",
        code="request_cancelled",
        http_status=409,
    )
