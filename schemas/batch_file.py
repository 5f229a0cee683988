"""Batch files, pure, for ingress (which checks an input file before it takes the batch) and the
runner (which feeds its lines and writes the results): reading an input file (every problem
named by its line, so nothing is enqueued from a bad file), the request id of each line, the
output and error lines (OpenAI's Batch API formats)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field, ValidationError

from schemas.batches import BatchStatus
from schemas.bodies import BODIES, Body
from schemas.envelopes import Result, Status


class InputLine(BaseModel):
    custom_id: str = Field(min_length=1, max_length=512)
    method: Literal["POST"]
    url: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Line:
    number: int
    custom_id: str
    body: Body


@dataclass(frozen=True)
class LineError:
    """As OpenAI lists it in a failed batch's `errors`."""

    code: str
    message: str
    line: int | None = None
    param: str | None = None

    def document(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "line": self.line, "param": self.param}


MAX_ERRORS = 100

Unrun = Literal[BatchStatus.CANCELLED, BatchStatus.EXPIRED]
"""Why a line never ran."""


def read_input(data: bytes, endpoint: str, max_lines: int) -> list[Line] | list[LineError]:
    """The lines of a batch input file, or the errors that make it unusable (up to 100)."""
    lines: list[Line] = []
    errors: list[LineError] = []
    seen: set[str] = set()
    _, body_type = BODIES[endpoint]
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            parsed = InputLine.model_validate(orjson.loads(raw))
        except orjson.JSONDecodeError:
            errors.append(LineError("invalid_json_line", "This line is not valid JSON.", number))
            continue
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            errors.append(LineError("invalid_request", f"{where}: {first['msg']}", number, where))
            continue
        if parsed.url != endpoint:
            message = f"The line's url '{parsed.url}' is not the batch's endpoint '{endpoint}'."
            errors.append(LineError("mismatched_endpoint", message, number, "url"))
        elif parsed.custom_id in seen:
            message = f"The custom_id '{parsed.custom_id}' appears more than once."
            errors.append(LineError("duplicate_custom_id", message, number, "custom_id"))
        else:
            try:
                lines.append(Line(number, parsed.custom_id, body_type.model_validate(parsed.body)))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = "body." + ".".join(str(p) for p in first["loc"])
                errors.append(LineError("invalid_body", f"{where}: {first['msg']}", number, where))
        seen.add(parsed.custom_id)
        if len(errors) >= MAX_ERRORS:
            break
    if not errors and not lines:
        errors.append(LineError("empty_file", "The input file has no request lines."))
    if len(lines) > max_lines:
        errors.append(LineError("too_many_lines", f"A batch holds at most {max_lines} lines."))
    return errors or lines


def line_request_id(batch_id: str, custom_id: str) -> str:
    """The same request id each time a line is expanded (after a crash too): duplicates of a
    line are one request to every sink."""
    digest = hashlib.sha256(f"{batch_id}\0{custom_id}".encode()).hexdigest()
    return f"req_{digest[:26]}"


def output_line(result: Result) -> tuple[bool, dict[str, Any]]:
    """(succeeded, the line for the output or error file) of a line's result."""
    assert result.custom_id is not None
    line: dict[str, Any] = {
        "id": f"batch_req_{result.id.removeprefix('req_')}",
        "custom_id": result.custom_id,
        "response": None,
        "error": None,
    }
    if result.cache is not None:
        line["x_aibroker_cache"] = result.cache.value
    if result.cache_score is not None:
        line["x_aibroker_cache_score"] = result.cache_score
    if result.status is Status.SUCCEEDED:
        line["response"] = {"status_code": 200, "request_id": result.id, "body": result.response}
        return True, line
    error = result.error
    if result.status is Status.FAILED and error is not None:
        body = {"error": error.model_dump(include={"message", "type", "param", "code"})}
        line["response"] = {"status_code": error.http_status, "request_id": result.id, "body": body}
    else:
        code = f"batch_{result.status.value}"
        line["error"] = {"code": code, "message": f"The request was {result.status.value}."}
    return False, line


def unrun_line(batch_id: str, custom_id: str, why: Unrun) -> dict[str, Any]:
    """The error line of a line that never ran (the batch was cancelled or expired first)."""
    request_id = line_request_id(batch_id, custom_id)
    return {
        "id": f"batch_req_{request_id.removeprefix('req_')}",
        "custom_id": custom_id,
        "response": None,
        "error": {
            "code": f"batch_{why.value}",
            "message": f"The batch was {why.value} before this line ran.",
        },
    }
