"""The latency budget's reading of a trace: stages cut at the critical path's edges add up to
the server span, and a trace missing a hop is refused rather than read wrong."""

from __future__ import annotations

import pytest

from loadtest import budget
from loadtest.otlp import Span

pytestmark = pytest.mark.unit


def span(name: str, span_id: str, parent: str, kind: int, start: int, end: int) -> Span:
    return Span(
        service="s",
        name=name,
        trace_id="t",
        span_id=span_id,
        parent_id=parent,
        error=False,
        events=(),
        request_id="",
        kind=kind,
        attributes={},
        start_ns=start * 1_000_000,
        end_ns=end * 1_000_000,
    )


def sync_trace() -> list[Span]:
    """A sync request's spans, times in ms: 100 ms from the ingress's span start to its end."""
    return [
        span("POST /v1/chat/completions", "root", "", 2, 0, 100),
        span("POST /v1/chat/completions http receive", "rx", "root", 1, 1, 1),
        span("write aib.requests.interactive", "w", "root", 1, 5, 12),
        span("send aib.requests.interactive", "s1", "w", 4, 6, 11),
        span("process aib.requests.interactive", "d", "s1", 5, 14, 30),
        span("send aib.dispatch.mock", "s2", "d", 4, 20, 28),
        span("process aib.dispatch.mock", "p", "s2", 5, 31, 80),
        span("call mock/echo", "c", "p", 3, 40, 60),
        span("send aib.results", "r", "p", 4, 62, 70),
        span("send aib.replies.ing-1", "s3", "p", 4, 65, 72),
        span("process aib.results", "sink", "r", 5, 75, 90),
        span("POST /v1/chat/completions http send", "tx", "root", 1, 95, 95),
        span("POST /v1/chat/completions http send", "tx2", "root", 1, 99, 99),
    ]


def test_the_sync_stages_cut_the_critical_path_and_add_up_to_the_server_span() -> None:
    stages = budget.sync_stages(sync_trace())
    assert [stages[name] for name in budget.SYNC_STAGES] == [6, 8, 6, 11, 9, 20, 5, 30, 5]
    assert sum(stages[name] for name in budget.SYNC_STAGES) == 100
    assert (stages["ack requests"], stages["ack dispatch"], stages["ack reply"]) == (5, 8, 7)


def test_a_trace_without_its_reply_is_incomplete() -> None:
    spans = [s for s in sync_trace() if s.span_id != "s3"]
    with pytest.raises(budget.Incomplete, match="replies"):
        budget.sync_stages(spans)


def test_the_async_stages() -> None:
    spans = [
        span("POST /v1/requests", "root", "", 2, 0, 20),
        span("write aib.requests.interactive", "w", "root", 1, 4, 15),
        span("send aib.requests.interactive", "s1", "w", 4, 5, 14),
    ]
    assert budget.async_stages(spans) == {
        "ingress: parse, checks, envelope": 5,
        "produce until acknowledged": 9,
        "the 202": 6,
    }


def test_percentiles_take_each_stage_over_the_requests() -> None:
    samples = [{"a": float(i), "b": 2.0 * i} for i in range(1, 11)]
    got = budget.percentiles(samples)
    assert got["a"]["p50"] == 5.5
    assert got["b"]["p50"] == 11.0
    assert got["a"]["p90"] == pytest.approx(9.1)
