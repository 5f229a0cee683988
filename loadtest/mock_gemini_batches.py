"""The mock provider's Gemini Batch API (the Gemini Developer API's shape, as `google-genai`
reads it): `POST /v1beta/models/{model}:batchGenerateContent` with the requests inline, `GET
/v1beta/batches/{id}` (the batch as an operation, its inlined responses in its metadata once it
ended), `GET /v1beta/batches`, `POST /v1beta/batches/{id}:cancel`. The knobs of
`loadtest/mock_batches.py` apply (delay, every Nth line failing, expiry, failure, a slow
create); each line is answered as the mock's `generateContent` would."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from loadtest import mock_gemini
from loadtest.mock_batches import BatchState, MockBatch, _iso, _json, _new_id, line_outcomes

_STATES = {"expired": "BATCH_STATE_EXPIRED", "cancelled": "BATCH_STATE_CANCELLED"}


class GeminiBatches:
    def __init__(self, state: BatchState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1beta/models/{model}:batchGenerateContent", self.create, methods=["POST"]),
            Route("/v1beta/batches/{batch_id}:cancel", self.cancel, methods=["POST"]),
            Route("/v1beta/batches/{batch_id}", self.retrieve),
            Route("/v1beta/batches", self.list),
        ]

    async def create(self, request: Request) -> Response:
        if not (request.headers.get("x-goog-api-key") or request.query_params.get("key")):
            refused = mock_gemini.error_body(403, "Method doesn't allow unregistered callers")
            return _json(refused, 403)
        model = request.path_params["model"]
        batch_doc = orjson.loads(await request.body()).get("batch") or {}
        inline = ((batch_doc.get("inputConfig") or {}).get("requests") or {}).get("requests")
        if not inline:
            return _json(mock_gemini.error_body(400, "inputConfig.requests: required"), 400)
        lines = [
            {
                "custom_id": (r.get("metadata") or {}).get("key"),
                "metadata": r.get("metadata"),
                "body": {"model": model, **mock_gemini.camel_case(r.get("request") or {})},
            }
            for r in inline
        ]
        now = time.time()
        name = f"batches/{_new_id('mock')}"
        metadata: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": f"models/{model}",
            "displayName": batch_doc.get("displayName"),
            "createTime": _iso(now),
            "updateTime": _iso(now),
            "state": "BATCH_STATE_RUNNING",
            "batchStats": {"requestCount": str(len(lines)), "pendingRequestCount": str(len(lines))},
        }
        doc = {"name": name, "metadata": metadata, "done": False}
        batch = MockBatch(name, "gemini", lines, self.state.knobs, now, doc)
        self.state.batches[name] = batch
        self.state.lines += len(lines)
        await asyncio.sleep(batch.knobs.create_delay_s)
        return _json(doc)

    def _batch(self, batch_id: str) -> MockBatch | None:
        batch = self.state.batches.get(f"batches/{batch_id}")
        if batch is None or batch.api != "gemini":
            return None
        if batch.results is None and time.time() - batch.created_at >= batch.knobs.delay_s:
            self._end(batch)
        return batch

    def _end(self, batch: MockBatch) -> None:
        now = _iso(time.time())
        metadata = batch.doc["metadata"]
        if batch.knobs.fail and not batch.cancelled:
            batch.results = []
            metadata |= {"state": "BATCH_STATE_FAILED", "endTime": now, "updateTime": now}
            batch.doc |= {"done": True, "error": {"code": 13, "message": "mock batch failure"}}
            return
        batch.results = []
        for line, (fate, status) in zip(batch.lines, line_outcomes(batch), strict=True):
            body = {k: v for k, v in line["body"].items() if k != "model"}
            if fate == "ok":
                problem = mock_gemini.invalid(body)
                fate, status = ("ok", None) if problem is None else ("error", 400)
            if fate == "ok":
                batch.results.append(
                    {"response": mock_gemini.answer(body), "metadata": line["metadata"]}
                )
            elif fate == "error":
                code = status or 500
                error = {"code": code, "message": f"mock line error {code}"}
                batch.results.append({"error": error, "metadata": line["metadata"]})
        if batch.cancelled:
            state = _STATES["cancelled"]
        elif batch.knobs.expire:
            state = _STATES["expired"]
        else:
            state = "BATCH_STATE_SUCCEEDED"
        output = {"inlinedResponses": {"inlinedResponses": batch.results}}
        metadata |= {"state": state, "endTime": now, "updateTime": now, "output": output}
        batch.doc["done"] = True

    async def retrieve(self, request: Request) -> Response:
        batch = self._batch(request.path_params["batch_id"])
        return _json(batch.doc) if batch else _json(mock_gemini.error_body(404), 404)

    async def cancel(self, request: Request) -> Response:
        batch = self._batch(request.path_params["batch_id"])
        if batch is None:
            return _json(mock_gemini.error_body(404), 404)
        if batch.results is None:
            batch.cancelled = True
            self._end(batch)
        return _json({})

    async def list(self, request: Request) -> Response:
        """The newest batches first, `pageSize` of them (no paging)."""
        size = int(request.query_params.get("pageSize", 50))
        found = [b for b in reversed(self.state.batches.values()) if b.api == "gemini"]
        docs = [b.doc for b in found[:size] if self._batch(b.id.removeprefix("batches/"))]
        return _json({"operations": docs})
