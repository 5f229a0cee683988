"""Batch input checking and output lines, pure."""

from __future__ import annotations

import time

import orjson
import pytest

from schemas.batch_file import Line, LineError, line_request_id, output_line, read_input, unrun_line
from schemas.batches import BatchStatus
from schemas.envelopes import ErrorInfo, Result, Status

pytestmark = pytest.mark.unit

CHAT = "/v1/chat/completions"


def row(custom_id: str, url: str = CHAT, **body: object) -> bytes:
    payload = {"model": "m", "messages": [{"role": "user", "content": "x"}], **body}
    return orjson.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": payload})


def test_good_lines_are_read_with_their_numbers_blank_lines_skipped() -> None:
    lines = read_input(row("a") + b"\n\n" + row("b") + b"\n", CHAT, 10)
    assert [(line.number, line.custom_id) for line in lines if isinstance(line, Line)] == [
        (1, "a"),
        (3, "b"),
    ]


def test_every_problem_is_named_by_its_line() -> None:
    data = b"\n".join(
        [
            row("a"),
            b"{oops",
            row("a"),
            row("c", url="/v1/embeddings"),
            row("d", temperature=7),
            orjson.dumps({"custom_id": "e", "method": "GET", "url": CHAT, "body": {}}),
        ]
    )
    errors = read_input(data, CHAT, 10)
    assert [(e.line, e.code) for e in errors if isinstance(e, LineError)] == [
        (2, "invalid_json_line"),
        (3, "duplicate_custom_id"),
        (4, "mismatched_endpoint"),
        (5, "invalid_body"),
        (6, "invalid_request"),
    ]


def test_empty_and_oversized_files_fail() -> None:
    [empty] = read_input(b"\n", CHAT, 10)
    assert isinstance(empty, LineError)
    assert empty.code == "empty_file"
    errors = read_input(b"\n".join(row(str(i)) for i in range(3)), CHAT, 2)
    assert [e.code for e in errors if isinstance(e, LineError)] == ["too_many_lines"]


def test_a_line_has_the_same_request_id_every_time() -> None:
    assert line_request_id("batch_1", "a") == line_request_id("batch_1", "a")
    assert line_request_id("batch_1", "a") != line_request_id("batch_1", "b")
    assert line_request_id("batch_1", "a") != line_request_id("batch_2", "a")


def result(status: Status, error: ErrorInfo | None = None) -> Result:
    return Result(
        id="req_x",
        tenant="t",
        status=status,
        response={"ok": True} if status is Status.SUCCEEDED else None,
        error=error,
        finished_at=time.time(),
        batch_id="batch_1",
        custom_id="a",
    )


def test_output_lines_follow_openai() -> None:
    ok, line = output_line(result(Status.SUCCEEDED))
    assert ok
    assert line["response"] == {"status_code": 200, "request_id": "req_x", "body": {"ok": True}}
    assert line["error"] is None
    bad = ErrorInfo(message="no", type="invalid_request_error", http_status=400)
    ok, line = output_line(result(Status.FAILED, bad))
    assert not ok
    assert line["response"]["status_code"] == 400
    assert line["response"]["body"]["error"]["message"] == "no"
    ok, line = output_line(result(Status.EXPIRED))
    assert line["response"] is None
    assert line["error"]["code"] == "batch_expired"
    assert unrun_line("batch_1", "z", BatchStatus.CANCELLED)["error"]["code"] == "batch_cancelled"
