"""`aibroker batch submit --wait` shows a bar on a terminal and plain lines anywhere else."""

import io

import pytest

from aibroker.batch_client import ProgressReport, progress_line
from aibroker.client import BatchProgress

pytestmark = pytest.mark.unit


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def progress(status: str, total: int, completed: int, failed: int = 0) -> BatchProgress:
    counts = {"total": total, "completed": completed, "failed": failed}
    return BatchProgress(id="batch_1", status=status, request_counts=counts)


POLLS = [
    progress("in_progress", 0, 0),
    progress("in_progress", 10, 0),
    progress("in_progress", 10, 0),  # a poll that saw nothing new
    progress("in_progress", 10, 4, 1),
    progress("completed", 10, 9, 1),
]


def test_a_log_gets_one_plain_line_per_change() -> None:
    log = io.StringIO()
    with ProgressReport(log) as report:
        for poll in POLLS:
            report(poll)
    assert log.getvalue().splitlines() == [
        "batch batch_1: in_progress, 0/0 done (0 failed)",
        "batch batch_1: in_progress, 0/10 done (0 failed)",
        "batch batch_1: in_progress, 5/10 done (1 failed)",
        "batch batch_1: completed, 10/10 done (1 failed)",
    ]
    assert "\r" not in log.getvalue()


def test_a_terminal_gets_a_bar_that_ends_full() -> None:
    terminal = Terminal()
    with ProgressReport(terminal) as report:
        for poll in POLLS:
            report(poll)
    drawn = terminal.getvalue()
    assert "\r" in drawn  # redrawn in place
    last = drawn.rstrip("\n").split("\r")[-1]
    assert "batch batch_1" in last
    assert "10/10" in last
    assert "100%" in last
    assert "1 failed, completed" in last
    assert progress_line(POLLS[-1]) not in drawn  # no plain lines on a terminal
