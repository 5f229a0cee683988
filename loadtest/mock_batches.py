"""The mock provider's batch APIs: OpenAI's `/v1/files` + `/v1/batches` (JSONL in, output and
error files out; create, list, retrieve, cancel), Anthropic's `/v1/messages/batches`
(requests inline, results JSONL) and Gemini's (`loadtest/mock_gemini_batches.py`).

A batch ends `delay_s` after it was created, and only then are its lines answered, each as the
mock's chat route would (`mock/fail-500` in a line's model makes that line an error). Knobs, for
every batch through `POST /_control/batches` (`{"delay_s", "fail_every", "expire",
"expire_keep", "fail", "create_delay_s"}`), or for one OpenAI batch through its metadata
(`mock_delay_s`, `mock_fail_every`, `mock_expire`, `mock_expire_keep`, `mock_fail`,
`mock_create_delay_s`): `fail_every` N makes every Nth line an error (a partial batch),
`expire` ends the batch expired with only its first `expire_keep` lines answered, `fail` fails
the whole batch (OpenAI only: Anthropic's batches have no such state), `create_delay_s`
answers a create that long after the batch exists. Both APIs list their batches, newest first.
`GET /_batches` counts the batches and lines received, and the batches cancelled.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from loadtest import mock_anthropic, mock_openai


@dataclass
class BatchKnobs:
    delay_s: float = 0.0
    fail_every: int = 0
    expire: bool = False
    expire_keep: int = 0
    fail: bool = False
    create_delay_s: float = 0.0
    """How long a create is answered after the batch exists (a client that dies meanwhile
    never learns its id: the crash window a pool must close)."""

    @classmethod
    def of(cls, metadata: dict[str, str], base: BatchKnobs) -> BatchKnobs:
        """The defaults, overridden by an OpenAI batch's `mock_*` metadata."""

        def flag(name: str, default: bool) -> bool:
            value = metadata.get(f"mock_{name}")
            return default if value is None else value.lower() in ("1", "true", "yes")

        return cls(
            delay_s=float(metadata.get("mock_delay_s", base.delay_s)),
            fail_every=int(metadata.get("mock_fail_every", base.fail_every)),
            expire=flag("expire", base.expire),
            expire_keep=int(metadata.get("mock_expire_keep", base.expire_keep)),
            fail=flag("fail", base.fail),
            create_delay_s=float(metadata.get("mock_create_delay_s", base.create_delay_s)),
        )


@dataclass
class MockBatch:
    id: str
    api: str
    lines: list[dict[str, Any]]
    knobs: BatchKnobs
    created_at: float
    doc: dict[str, Any]
    cancelled: bool = False
    results: list[dict[str, Any]] | None = None
    """Each line's answer, set once when the batch ends."""


@dataclass
class MockFile:
    id: str
    purpose: str
    filename: str
    content: bytes
    created_at: int

    def doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass
class BatchState:
    knobs: BatchKnobs = field(default_factory=BatchKnobs)
    files: dict[str, MockFile] = field(default_factory=dict)
    batches: dict[str, MockBatch] = field(default_factory=dict)
    lines: int = 0


def _json(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json")


def _new_id(prefix: str) -> str:
    return f"{prefix}{random.getrandbits(64):016x}"


def _fails(body: dict[str, Any]) -> int | None:
    """The status a line's model directives (`mock/fail-500`) make it fail with, if any."""
    for part in str(body.get("model", "")).split("+"):
        name, _, arg = part.rpartition("/")[2].partition("-")
        if name == "fail":
            return int(arg or 500)
    return None


def line_outcomes(batch: MockBatch) -> list[tuple[str, int | None]]:
    """Each line's fate when the batch ends: `ok`, `error` (with a status), `expired` or
    `cancelled`, from the knobs and the lines' own fault directives."""
    out: list[tuple[str, int | None]] = []
    for i, line in enumerate(batch.lines, start=1):
        status = _fails(line["body"])
        if batch.cancelled:
            out.append(("cancelled", None))
        elif batch.knobs.expire and i > batch.knobs.expire_keep:
            out.append(("expired", None))
        elif status is not None:
            out.append(("error", status))
        elif batch.knobs.fail_every and i % batch.knobs.fail_every == 0:
            out.append(("error", 500))
        else:
            out.append(("ok", None))
    return out


class MockBatches:
    """Both providers' batch routes over one state."""

    def __init__(self) -> None:
        self.state = BatchState()

    def routes(self) -> list[BaseRoute]:
        """Every batch route (before the mock's `/v1beta/models/{target}`, which would take
        Gemini's `:batchGenerateContent` for a model's method)."""
        from loadtest.mock_gemini_batches import GeminiBatches  # it imports this module

        return [
            *GeminiBatches(self.state).routes(),
            Route("/v1/files", self.upload, methods=["POST"]),
            Route("/v1/files/{file_id}", self.file),
            Route("/v1/files/{file_id}/content", self.content),
            Route("/v1/batches", self.openai_create, methods=["POST"]),
            Route("/v1/batches", self.openai_list),
            Route("/v1/batches/{batch_id}", self.openai_retrieve),
            Route("/v1/batches/{batch_id}/cancel", self.openai_cancel, methods=["POST"]),
            Route("/v1/messages/batches", self.anthropic_create, methods=["POST"]),
            Route("/v1/messages/batches", self.anthropic_list),
            Route("/v1/messages/batches/{batch_id}", self.anthropic_retrieve),
            Route(
                "/v1/messages/batches/{batch_id}/cancel", self.anthropic_cancel, methods=["POST"]
            ),
            Route("/v1/messages/batches/{batch_id}/results", self.anthropic_results),
            Route("/_control/batches", self.control, methods=["POST"]),
            Route("/_batches", self.stats),
        ]

    async def control(self, request: Request) -> Response:
        self.state.knobs = BatchKnobs(**orjson.loads(await request.body()))
        return _json(vars(self.state.knobs))

    async def stats(self, _: Request) -> Response:
        by_api: dict[str, int] = {}
        for batch in self.state.batches.values():
            by_api[batch.api] = by_api.get(batch.api, 0) + 1
        cancelled = sum(1 for batch in self.state.batches.values() if batch.cancelled)
        return _json({"batches": by_api, "lines": self.state.lines, "cancelled": cancelled})

    # OpenAI: files

    async def upload(self, request: Request) -> Response:
        async with request.form() as form:
            upload = form.get("file")
            purpose = str(form.get("purpose") or "")
            if upload is None or isinstance(upload, str):
                return _json(mock_openai.error(400, None)[0], 400)
            content = await upload.read()
            name = upload.filename or "upload.jsonl"
        saved = MockFile(_new_id("file-mock"), purpose, name, content, int(time.time()))
        self.state.files[saved.id] = saved
        return _json(saved.doc())

    async def file(self, request: Request) -> Response:
        found = self.state.files.get(request.path_params["file_id"])
        return _json(found.doc()) if found else _not_found("file")

    async def content(self, request: Request) -> Response:
        found = self.state.files.get(request.path_params["file_id"])
        if found is None:
            return _not_found("file")
        return Response(found.content, media_type="application/octet-stream")

    # OpenAI: batches

    async def openai_create(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        source = self.state.files.get(str(body.get("input_file_id")))
        if source is None or source.purpose != "batch":
            return _not_found("input file")
        lines = [orjson.loads(line) for line in source.content.splitlines() if line.strip()]
        metadata = body.get("metadata") or {}
        now = time.time()
        doc: dict[str, Any] = {
            "id": _new_id("batch_mock"),
            "object": "batch",
            "endpoint": body.get("endpoint", "/v1/chat/completions"),
            "input_file_id": source.id,
            "completion_window": body.get("completion_window", "24h"),
            "status": "in_progress",
            "created_at": int(now),
            "in_progress_at": int(now),
            "expires_at": int(now + 86400),
            "metadata": metadata or None,
            "output_file_id": None,
            "error_file_id": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
        }
        batch = MockBatch(
            doc["id"], "openai", lines, BatchKnobs.of(metadata, self.state.knobs), now, doc
        )
        self.state.batches[batch.id] = batch
        self.state.lines += len(lines)
        await asyncio.sleep(batch.knobs.create_delay_s)
        return _json(doc)

    def _openai(self, batch_id: str) -> MockBatch | None:
        batch = self.state.batches.get(batch_id)
        if batch is None or batch.api != "openai":
            return None
        if batch.results is None and time.time() - batch.created_at >= batch.knobs.delay_s:
            self._end_openai(batch)
        return batch

    def _end_openai(self, batch: MockBatch) -> None:
        now = int(time.time())
        if batch.knobs.fail:
            batch.results = []
            error = {"code": "invalid_request", "message": "mock batch failure", "line": None}
            batch.doc |= {"status": "failed", "failed_at": now, "errors": {"data": [error]}}
            return
        outputs, errors = [], []
        for line, (fate, status) in zip(batch.lines, line_outcomes(batch), strict=True):
            custom_id = line.get("custom_id")
            if fate == "ok":
                answer = {"status_code": 200, "request_id": _new_id("req_"), "body": None}
                answer["body"] = mock_openai.completion(line["body"])
                outputs.append({"id": _new_id("batch_req_"), "custom_id": custom_id,
                                "response": answer, "error": None})  # fmt: skip
            elif fate == "error":
                body, _ = mock_openai.error(status or 500, None)
                answer = {"status_code": status, "request_id": _new_id("req_"), "body": body}
                outputs.append({"id": _new_id("batch_req_"), "custom_id": custom_id,
                                "response": answer, "error": None})  # fmt: skip
            elif fate == "expired":
                error = {"code": "batch_expired", "message": "This request could not be "
                         "executed before the completion window expired."}  # fmt: skip
                errors.append({"id": _new_id("batch_req_"), "custom_id": custom_id,
                               "response": None, "error": error})  # fmt: skip
        batch.results = outputs + errors
        failed = sum(1 for fate, _ in line_outcomes(batch) if fate != "ok")
        counts = {"total": len(batch.lines), "completed": len(batch.lines) - failed}
        batch.doc["request_counts"] = counts | {"failed": failed}
        batch.doc["output_file_id"] = self._save(outputs)
        batch.doc["error_file_id"] = self._save(errors)
        if batch.cancelled:
            batch.doc |= {"status": "cancelled", "cancelled_at": now}
        elif batch.knobs.expire:
            batch.doc |= {"status": "expired", "expired_at": now}
        else:
            batch.doc |= {"status": "completed", "finalizing_at": now, "completed_at": now}

    def _save(self, lines: list[dict[str, Any]]) -> str | None:
        if not lines:
            return None
        content = b"".join(orjson.dumps(line) + b"\n" for line in lines)
        saved = MockFile(_new_id("file-mock"), "batch_output", "output.jsonl", content, 0)
        self.state.files[saved.id] = saved
        return saved.id

    async def openai_list(self, request: Request) -> Response:
        """The newest batches first, `limit` of them (no paging: `has_more` is false)."""
        limit = int(request.query_params.get("limit", 20))
        found = [b for b in reversed(self.state.batches.values()) if b.api == "openai"]
        docs = [b.doc for b in found[:limit] if self._openai(b.id)]
        first, last = (docs[0]["id"], docs[-1]["id"]) if docs else (None, None)
        return _json(
            {"object": "list", "data": docs, "first_id": first, "last_id": last, "has_more": False}
        )

    async def openai_retrieve(self, request: Request) -> Response:
        batch = self._openai(request.path_params["batch_id"])
        return _json(batch.doc) if batch else _not_found("batch")

    async def openai_cancel(self, request: Request) -> Response:
        batch = self._openai(request.path_params["batch_id"])
        if batch is None:
            return _not_found("batch")
        if batch.results is None:
            batch.cancelled = True
            batch.doc["cancelling_at"] = int(time.time())
            self._end_openai(batch)
        return _json(batch.doc)

    # Anthropic: message batches

    async def anthropic_create(self, request: Request) -> Response:
        if not (request.headers.get("x-api-key") or request.headers.get("authorization")):
            return _json(mock_anthropic.error_body(401, "x-api-key header is required"), 401)
        body = orjson.loads(await request.body())
        lines = [{"custom_id": r.get("custom_id"), "body": r.get("params") or {}}
                 for r in body.get("requests") or []]  # fmt: skip
        if not lines:
            return _json(mock_anthropic.error_body(400, "requests: at least one required"), 400)
        now = time.time()
        doc: dict[str, Any] = {
            "id": _new_id("msgbatch_mock"),
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": _counts({}, processing=len(lines)),
            "created_at": _iso(now),
            "expires_at": _iso(now + 86400),
            "ended_at": None,
            "cancel_initiated_at": None,
            "archived_at": None,
            "results_url": None,
        }
        batch = MockBatch(doc["id"], "anthropic", lines, self.state.knobs, now, doc)
        self.state.batches[batch.id] = batch
        self.state.lines += len(lines)
        await asyncio.sleep(batch.knobs.create_delay_s)
        return _json(doc)

    def _anthropic(self, request: Request, batch_id: str | None = None) -> MockBatch | None:
        batch = self.state.batches.get(batch_id or request.path_params["batch_id"])
        if batch is None or batch.api != "anthropic":
            return None
        if batch.results is None and time.time() - batch.created_at >= batch.knobs.delay_s:
            self._end_anthropic(batch, str(request.base_url))
        return batch

    async def anthropic_list(self, request: Request) -> Response:
        """The newest message batches first, `limit` of them (no paging)."""
        limit = int(request.query_params.get("limit", 20))
        found = [b for b in reversed(self.state.batches.values()) if b.api == "anthropic"]
        docs = [b.doc for b in found[:limit] if self._anthropic(request, b.id)]
        first, last = (docs[0]["id"], docs[-1]["id"]) if docs else (None, None)
        return _json({"data": docs, "has_more": False, "first_id": first, "last_id": last})

    def _end_anthropic(self, batch: MockBatch, base_url: str) -> None:
        batch.results = []
        tally: dict[str, int] = {}
        for line, (fate, status) in zip(batch.lines, line_outcomes(batch), strict=True):
            if fate == "ok":
                problem = mock_anthropic.invalid(line["body"])
                fate, status = ("succeeded", None) if problem is None else ("errored", 400)
            result: dict[str, Any] = {"type": _ANTHROPIC_FATES.get(fate, fate)}
            if result["type"] == "succeeded":
                result["message"] = mock_anthropic.answer(line["body"])
            elif result["type"] == "errored":
                result["error"] = mock_anthropic.error_body(status or 500)
            tally[result["type"]] = tally.get(result["type"], 0) + 1
            batch.results.append({"custom_id": line["custom_id"], "result": result})
        batch.doc |= {
            "processing_status": "ended",
            "ended_at": _iso(time.time()),
            "request_counts": _counts(tally, processing=0),
            "results_url": f"{base_url}v1/messages/batches/{batch.id}/results",
        }

    async def anthropic_retrieve(self, request: Request) -> Response:
        batch = self._anthropic(request)
        return _json(batch.doc) if batch else _json(mock_anthropic.error_body(404), 404)

    async def anthropic_cancel(self, request: Request) -> Response:
        batch = self._anthropic(request)
        if batch is None:
            return _json(mock_anthropic.error_body(404), 404)
        if batch.results is None:
            batch.cancelled = True
            batch.doc["cancel_initiated_at"] = _iso(time.time())
            self._end_anthropic(batch, str(request.base_url))
        return _json(batch.doc)

    async def anthropic_results(self, request: Request) -> Response:
        batch = self._anthropic(request)
        if batch is None or batch.results is None:
            return _json(mock_anthropic.error_body(404, "results not ready"), 404)
        content = b"".join(orjson.dumps(line) + b"\n" for line in batch.results)
        return Response(content, media_type="application/binary")


_ANTHROPIC_FATES = {"error": "errored", "cancelled": "canceled"}


def _counts(tally: dict[str, int], *, processing: int) -> dict[str, int]:
    names = ("succeeded", "errored", "canceled", "expired")
    return {"processing": processing} | {n: tally.get(n, 0) for n in names}


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _not_found(what: str) -> Response:
    error = {"message": f"No such {what}", "type": "invalid_request_error", "code": "not_found"}
    return _json({"error": error}, 404)
