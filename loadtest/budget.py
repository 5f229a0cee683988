"""A request's latency budget, stage by stage, from the spans of its trace: pure functions over
`loadtest.otlp.Span`s, so the benchmark and its tests share one reading.

A sync chat request's critical path, in the order its spans start:

    ingress                 dispatcher                pool                      ingress
    POST ─ send requests ─▶ process ─ send dispatch ─▶ process ─ call ─ send replies ─▶ http send

Each stage is the time between two of those edges, so the stages add up to the ingress's
server span (what the caller waited for, less the TCP round trip). A hop (`send` start to the
consumer's `process` start) holds the produce until acknowledged *and* the consumer's fetch
wake; the acknowledgement alone is reported beside it, as `ack`."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

from loadtest.otlp import Span

SYNC_STAGES = (
    "ingress: parse, checks, envelope",
    "hop 1: requests topic (produce + dispatcher fetch wake)",
    "dispatcher: admission and routing",
    "hop 2: dispatch topic (produce + pool fetch wake)",
    "pool: before the provider call",
    "provider call",
    "pool: after the call, before the reply",
    "hop 3: reply topic (produce + ingress wake)",
    "ingress: the answer",
)
ASYNC_STAGES = ("ingress: parse, checks, envelope", "produce until acknowledged", "the 202")
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5


class Incomplete(ValueError):
    """A trace without one of the spans a stage needs (not yet exported, or another path)."""


def _one(spans: Iterable[Span], what: str) -> Span:
    found = sorted(spans, key=lambda s: s.start_ns)
    if not found:
        raise Incomplete(what)
    return found[0]


def _child(spans: Sequence[Span], parent: Span, kind: int, topic_part: str = "") -> Span:
    return _one(
        (
            s
            for s in spans
            if s.parent_id == parent.span_id and s.kind == kind and topic_part in s.name
        ),
        f"{kind} under {parent.name}",
    )


def _consumer_of(spans: Sequence[Span], send: Span) -> Span:
    return _one(
        (s for s in spans if s.parent_id == send.span_id and s.kind == CONSUMER),
        f"the consumer of {send.name}",
    )


def _send_under(spans: Sequence[Span], root: Span, topic_part: str) -> Span:
    """The producer span for `topic_part` below `root` (directly or under a `write` span)."""
    below = {root.span_id} | {s.span_id for s in spans if s.parent_id == root.span_id}
    return _one(
        (s for s in spans if s.kind == PRODUCER and s.parent_id in below and topic_part in s.name),
        f"send {topic_part} under {root.name}",
    )


def sync_stages(spans: Sequence[Span]) -> dict[str, float]:
    """Milliseconds per stage of one sync chat request's trace, and `ack_*` for the three
    produces' acknowledgements."""
    root = _one((s for s in spans if not s.parent_id and s.kind == SERVER), "the server span")
    send_request = _send_under(spans, root, ".requests.")
    dispatcher = _consumer_of(spans, send_request)
    send_dispatch = _send_under(spans, dispatcher, ".dispatch.")
    pool = _consumer_of(spans, send_dispatch)
    call = _child(spans, pool, CLIENT)
    send_reply = _send_under(spans, pool, ".replies.")
    answer = _one(
        (s for s in spans if s.parent_id == root.span_id and s.name.endswith("http send")),
        "the answer's first http send",
    )
    edges = [
        root.start_ns,
        send_request.start_ns,
        dispatcher.start_ns,
        send_dispatch.start_ns,
        pool.start_ns,
        call.start_ns,
        call.end_ns,
        send_reply.start_ns,
        answer.start_ns,
        root.end_ns,
    ]
    stages = {
        name: (b - a) / 1e6 for name, a, b in zip(SYNC_STAGES, edges[:-1], edges[1:], strict=True)
    }
    for name, send in (
        ("requests", send_request),
        ("dispatch", send_dispatch),
        ("reply", send_reply),
    ):
        stages[f"ack {name}"] = (send.end_ns - send.start_ns) / 1e6
    return stages


def async_stages(spans: Sequence[Span]) -> dict[str, float]:
    """Milliseconds per stage of one async submit (`POST /v1/requests`, answered 202)."""
    root = _one((s for s in spans if not s.parent_id and s.kind == SERVER), "the server span")
    send = _send_under(spans, root, ".requests.")
    edges = [root.start_ns, send.start_ns, send.end_ns, root.end_ns]
    return {
        name: (b - a) / 1e6 for name, a, b in zip(ASYNC_STAGES, edges[:-1], edges[1:], strict=True)
    }


def traces(spans: Iterable[Span]) -> dict[str, list[Span]]:
    by_trace: dict[str, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    return by_trace


def percentiles(samples: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """p50 and p90 of each stage over many requests' stages."""
    out: dict[str, dict[str, float]] = {}
    for name in samples[0]:
        values = sorted(s[name] for s in samples)
        cuts = (
            statistics.quantiles(values, n=10, method="inclusive")
            if len(values) > 1
            else values * 9
        )
        out[name] = {"p50": statistics.median(values), "p90": cuts[8]}
    return out
