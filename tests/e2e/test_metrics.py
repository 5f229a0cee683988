"""Metrics are there and move when real requests go through."""

from __future__ import annotations

import httpx
import pytest

from loadtest.stack import Stack
from tests.scrape import scrape, value
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e]

HELLO = [{"role": "user", "content": "count me"}]


async def test_metrics_move_with_real_requests(stack: Stack) -> None:
    ingress = f"http://127.0.0.1:{stack.metrics_ports['ingress']}/metrics"
    sink = f"http://127.0.0.1:{stack.metrics_ports['results']}/metrics"
    dispatcher = f"http://127.0.0.1:{stack.metrics_ports['dispatcher']}/metrics"
    before = {url: await scrape(url) for url in (ingress, sink, dispatcher)}

    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as client:
        ok = await client.post(
            "/v1/chat/completions", json={"model": "mock/echo", "messages": HELLO}
        )
        assert ok.status_code == 200
        refused = await client.post(
            "/v1/chat/completions",
            headers={"Authorization": "x"},
            json={"model": "mock/echo", "messages": HELLO},
        )
        assert refused.status_code == 401

    after_ingress = await scrape(ingress)
    accepted = "aibroker_requests_accepted_total"
    assert (
        value(after_ingress, accepted, kind="chat", mode="sync")
        == value(before[ingress], accepted, kind="chat", mode="sync") + 1
    )
    refusals = "aibroker_requests_refused_total"
    assert (
        value(after_ingress, refusals, status="401", code="invalid_api_key")
        == value(before[ingress], refusals, status="401", code="invalid_api_key") + 1
    )

    finished = "aibroker_requests_finished_total"

    async def sink_counted() -> bool:
        now = await scrape(sink)
        return value(now, finished, provider="mock", model="echo", status="succeeded") > value(
            before[sink], finished, provider="mock", model="echo", status="succeeded"
        )

    await eventually(sink_counted, what="the results sink counted the request")
    after_sink = await scrape(sink)
    total = "aibroker_request_stage_seconds_count"
    assert value(after_sink, total, stage="total") > value(before[sink], total, stage="total")
    tokens = "aibroker_tokens_total"
    assert value(after_sink, tokens, model="echo", direction="completion") > value(
        before[sink], tokens, model="echo", direction="completion"
    )
    cost = "aibroker_cost_usd_total"  # the stack prices mock/echo
    assert value(after_sink, cost, model="echo") > value(before[sink], cost, model="echo")
    accept = "aibroker_request_stage_seconds_count"
    assert value(after_ingress, accept, stage="accept") > value(
        before[ingress], accept, stage="accept"
    )

    handled = "aibroker_worker_messages_total"
    after_dispatcher = await scrape(dispatcher)
    assert value(after_dispatcher, handled, worker="dispatcher.interactive", outcome="ok") > value(
        before[dispatcher], handled, worker="dispatcher.interactive", outcome="ok"
    )
    for per_record in (
        "aibroker_worker_handle_seconds_count",
        "aibroker_worker_record_age_seconds_count",
    ):
        assert value(after_dispatcher, per_record, worker="dispatcher.interactive") > value(
            before[dispatcher], per_record, worker="dispatcher.interactive"
        )
    lag = [n for (n, labels) in after_dispatcher if n == "aibroker_consumer_lag"]
    assert lag  # reported per topic and group; its value comes and goes with the traffic
