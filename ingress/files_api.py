"""`/v1/files` (OpenAI-compatible): batch input files in, batch output files out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from starlette.responses import Response

from aibroker.errors import InvalidRequest, NotFound
from aibroker.identity import Client
from aibroker.ids import new_id
from aibroker.stores.files import FileRecord
from ingress.auth import authenticate
from ingress.state import Services, services
from ingress.views import json_response

router = APIRouter(prefix="/v1/files", tags=["openai"])
Caller = Annotated[Client, Depends(authenticate)]


@router.post("")
async def upload(
    request: Request, caller: Caller, file: UploadFile, purpose: Annotated[str, Form()]
) -> Response:
    """A JSONL file of batch request lines (`purpose=batch`), or a document for a vector
    store (`assistants`, `user_data`: text, Markdown, HTML, PDF)."""
    if purpose not in ("batch", "assistants", "user_data"):
        raise InvalidRequest("Purpose must be batch, assistants or user_data.", param="purpose")
    data = await file.read()
    record = await services(request).files.put(
        new_id("file").replace("file_", "file-"),
        caller.tenant,
        file.filename or "upload.jsonl",
        purpose,
        data,
    )
    return json_response(record.document())


async def owned(svc: Services, file_id: str, caller: Client) -> FileRecord:
    record = await svc.files.get(file_id, caller.tenant)
    if record is None:
        raise NotFound(f"No such File object: {file_id}", param="file_id")
    return record


@router.get("/{file_id}")
async def retrieve(file_id: str, request: Request, caller: Caller) -> Response:
    return json_response((await owned(services(request), file_id, caller)).document())


@router.get("/{file_id}/content")
async def content(file_id: str, request: Request, caller: Caller) -> Response:
    svc = services(request)
    record = await owned(svc, file_id, caller)
    data = await svc.files.store.read(record.id)
    return Response(data, media_type="application/jsonl")


@router.delete("/{file_id}")
async def delete(file_id: str, request: Request, caller: Caller) -> Response:
    svc = services(request)
    await svc.files.delete(await owned(svc, file_id, caller))
    return json_response({"id": file_id, "object": "file", "deleted": True})
