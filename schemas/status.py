"""The status document of a request, as `GET /v1/requests/{id}` and webhooks show it."""

from __future__ import annotations

from typing import Any

from schemas.envelopes import Result, Status


def status_document(request_id: str, status: Status, result: Result | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": request_id,
        "object": "request",
        "status": status.value,
        "url": f"/v1/requests/{request_id}",
    }
    if result is not None:
        doc.update(
            result.model_dump(
                include={
                    "response",
                    "usage",
                    "cost_usd",
                    "served_by",
                    "attempts",
                    "queued_ms",
                    "service_ms",
                    "total_ms",
                    "finished_at",
                    "cache",
                    "cache_score",
                },
                exclude_none=True,
                mode="json",
            )
        )
        if result.error is not None:
            doc["error"] = result.error.model_dump(include={"message", "type", "code", "param"})
    return doc
