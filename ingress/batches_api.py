"""`/v1/batches` (OpenAI Batch API-compatible): a file of request lines run as one job. The
file is checked whole before anything is enqueued; a bad one fails the batch with `errors`
naming the lines. The caller's bounds (`aibroker.*` metadata keys, `aibroker.rules.batch_bounds`)
are checked first: a bad one is a 400 naming its key, and the line defaults they set are part
of each line when it is checked."""

from __future__ import annotations

import contextlib
import re
import time
from typing import Annotated, Any, Literal

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import Response

from aibroker.errors import BrokerError, InvalidRequest, NotFound, Unavailable
from aibroker.identity import Client
from aibroker.ids import new_id
from aibroker.rules.batch_bounds import BadBound, Bounds, parse_bounds, with_defaults
from aibroker.stores.tenants import active_endpoints
from ingress.auth import authenticate, check_model
from ingress.body_checks import check_body
from ingress.files_api import owned
from ingress.state import Services, services
from ingress.views import json_response
from schemas.batch_file import MAX_ERRORS, Line, LineError, read_input
from schemas.batches import Batch, BatchStatus
from schemas.bodies import BODIES, kind_of

router = APIRouter(prefix="/v1/batches", tags=["openai"])
Caller = Annotated[Client, Depends(authenticate)]
WINDOW = re.compile(r"^(\d+)([smh])$")


class NewBatch(BaseModel):
    input_file_id: str
    endpoint: Literal["/v1/chat/completions", "/v1/embeddings", "/v1/ocr", "/v1/responses"]
    completion_window: str = Field(
        default="24h", description="`24h` as OpenAI has it; any `<n>s|m|h` here."
    )
    metadata: dict[str, str] | None = None


@router.post("")
async def create(body: NewBatch, request: Request, caller: Caller) -> Response:
    svc = services(request)
    window = WINDOW.match(body.completion_window)
    if window is None:
        raise InvalidRequest("completion_window must look like '24h'.", param="completion_window")
    seconds = int(window[1]) * {"s": 1, "m": 60, "h": 3600}[window[2]]
    bounds = _bounds(body.metadata)
    record = await owned(svc, body.input_file_id, caller)
    data = await svc.files.store.read(record.id)
    parsed = read_input(data, body.endpoint, svc.settings.batch.max_lines)
    lines = _defaulted([line for line in parsed if isinstance(line, Line)], body.endpoint, bounds)
    errors = [e for e in parsed if isinstance(e, LineError)] or await _line_errors(
        svc, caller, lines
    )
    now = int(time.time())
    batch = Batch(
        id=new_id("batch"),
        endpoint=body.endpoint,
        input_file_id=body.input_file_id,
        completion_window=body.completion_window,
        status=BatchStatus.IN_PROGRESS,
        created_at=now,
        in_progress_at=now,
        expires_at=now + seconds,
        metadata=body.metadata,
        tenant=caller.tenant,
        key_id=caller.key_id,
        user=caller.user,
    )
    if errors:
        listed = {"object": "list", "data": [e.document() for e in errors]}
        batch = batch.model_copy(
            update={
                "status": BatchStatus.FAILED,
                "failed_at": now,
                "in_progress_at": None,
                "errors": listed,
            }
        )
    await svc.batches.create(batch, [] if errors else [line.custom_id for line in lines])
    if errors:
        with contextlib.suppress(KafkaError):  # the answer says it failed; a webhook may not
            tenant = await svc.tenant_store.get(caller.tenant)
            await svc.publisher.batch_ended(batch, active_endpoints(tenant))
    else:
        try:
            await svc.publisher.batch_started(batch.id)
        except KafkaError as exc:
            await svc.batches.transition(
                batch.id, BatchStatus.FAILED, now, from_=(BatchStatus.IN_PROGRESS,)
            )
            raise Unavailable("The broker cannot start batches right now.", retry_after=2) from exc
    return json_response(_document(await svc.batches.get(batch.id, caller.tenant)))


def _bounds(metadata: dict[str, str] | None) -> Bounds:
    try:
        return parse_bounds(metadata)
    except BadBound as exc:
        raise InvalidRequest(exc.message, param=f"metadata.{exc.key}") from exc


def _defaulted(lines: list[Line], endpoint: str, bounds: Bounds) -> list[Line]:
    """The lines as they will run, the batch's defaults under each (checked as the line is:
    a default the body type refuses is a 400 naming `aibroker.defaults`)."""
    if not bounds.defaults:
        return lines
    _, body_type = BODIES[endpoint]
    out = []
    for line in lines:
        merged = with_defaults(line.body.model_dump(exclude_unset=True), bounds.defaults)
        try:
            out.append(Line(line.number, line.custom_id, body_type.model_validate(merged)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = f"aibroker.defaults: {where}: {first['msg']} (line {line.number})."
            raise InvalidRequest(message, param="metadata.aibroker.defaults") from exc
    return out


async def _line_errors(svc: Services, caller: Client, lines: list[Line]) -> list[LineError]:
    """What a route would refuse in each line: a model that does not exist, serves another
    endpoint, or is not the key's or the tenant's to use (`check_model`), then the body's kind
    checks (`check_body`)."""
    vector_store = bool(svc.settings.embeddings.qdrant_url)
    errors: list[LineError] = []
    checked: dict[str, str | None] = {}
    for line in lines:
        model = line.body.model
        if model not in checked:
            try:
                await check_model(svc, caller, model, kind_of(line.body))
                checked[model] = None
            except BrokerError as exc:
                checked[model] = exc.error_code or "invalid_model"
        if checked[model]:
            message = f"The model '{model}' cannot be used here ({checked[model]})."
            errors.append(LineError(checked[model] or "", message, line.number, "body.model"))
            continue
        try:
            check_body(line.body, svc.routes, vector_store=vector_store, where="body.")
        except BrokerError as exc:
            code = exc.error_code or "invalid_body"
            errors.append(LineError(code, exc.message, line.number, exc.param))
    return errors[:MAX_ERRORS]


def _document(batch: Batch | None) -> dict[str, Any]:
    if batch is None:
        raise NotFound("No such batch.", param="batch_id")
    return batch.public()


@router.get("/{batch_id}")
async def retrieve(batch_id: str, request: Request, caller: Caller) -> Response:
    """The batch, with `request_counts` as they are now."""
    return json_response(_document(await services(request).batches.get(batch_id, caller.tenant)))


@router.get("")
async def page(
    request: Request,
    caller: Caller,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    batches = await services(request).batches.page(caller.tenant, limit + 1, after)
    data = [b.public() for b in batches[:limit]]
    return json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(batches) > limit,
        }
    )


@router.post("/{batch_id}/cancel")
async def cancel(batch_id: str, request: Request, caller: Caller) -> Response:
    """Stop feeding the batch and stop its running lines; what finished is kept (the output
    file has it). The batch is `cancelling`, then `cancelled` within a second or so."""
    svc = services(request)
    _document(await svc.batches.get(batch_id, caller.tenant))
    await svc.batches.transition(
        batch_id,
        BatchStatus.CANCELLING,
        int(time.time()),
        from_=(BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS),
    )
    return json_response(_document(await svc.batches.get(batch_id, caller.tenant)))
