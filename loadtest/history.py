"""A history of what clients, the provider and Kafka saw during a run, and the checker that
holds the broker to its guarantees after faults (used by the chaos tests and the soak).

Recorded: every submission and its answer (accepted ids, refusals), every terminal state a
client read, the provider's calls (each request's prompt carries a unique token, which the
mock's call log shows), and the results published on Kafka. `check` then asserts:

- every accepted request reached exactly one terminal result, as every client read of it
  agrees, by its deadline (plus a grace for the sweep that ends it);
- a succeeded answer is the answer to *its* prompt (the echo of its own token);
- the provider was called at most once per attempt the result counts, plus the work that was
  in flight when a fault hit;
- every error, refused at the door or ended later, is typed and clear (an OpenAI-style error
  object; a 5xx only as 503 with `Retry-After`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka.structs import ConsumerRecord

from aibroker.kafka.clients import make_consumer, topic_partitions
from aibroker.settings import KafkaSettings

TERMINAL = {"succeeded", "failed", "cancelled", "expired"}
ERROR_TYPES = {
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "rate_limit_error",
    "insufficient_quota",
    "server_error",
    "timeout_error",
    "overloaded_error",
    "api_error",
    "provider_error",
}


@dataclass(frozen=True)
class Submitted:
    token: str
    mode: str
    deadline: float | None
    at: float


@dataclass(frozen=True)
class Accept:
    """One async submission's answer time: what a producer waits for its 202 (or refusal)."""

    at: float
    ms: float
    accepted: bool


@dataclass(frozen=True)
class Refusal:
    status: int
    body: Any
    retry_after: str | None
    at: float = 0.0
    """When the answer came (time.time)."""
    token: str = ""
    """The prompt's token: its provider calls, if the refused request ran all the same."""


@dataclass
class History:
    model: str = "mock/echo"
    accepted: dict[str, Submitted] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)
    seen: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Every terminal state a client read, by request id (sync answers and long-polls)."""
    sync_errors: dict[str, Any] = field(default_factory=dict)
    """The error a sync caller was answered with, by request id."""
    transport_errors: int = 0
    """Calls that got no HTTP answer at all (the ingress was down): never accepted."""
    accepts: list[Accept] = field(default_factory=list)
    """Every async submission's answer time."""

    # --- recording -------------------------------------------------------------------------

    async def submit(
        self, client: httpx.AsyncClient, *, sync: bool, timeout_s: float | None = None
    ) -> str | None:
        """One chat request with a fresh token; records what came back. The request id, if
        the broker accepted it."""
        token = f"t{uuid.uuid4().hex[:12]}"
        body = {"model": self.model, "messages": [{"role": "user", "content": token}]}
        deadline = time.time() + timeout_s if timeout_s else None
        started = time.perf_counter()
        try:
            if sync:
                answer = await client.post("/v1/chat/completions", json=body)
            else:
                envelope: dict[str, Any] = {"endpoint": "/v1/chat/completions", "body": body}
                if deadline:
                    envelope["deadline"] = deadline
                answer = await client.post("/v1/requests", json=envelope)
        except httpx.TransportError:
            self.transport_errors += 1
            return None
        # Only an answer about an accepted request (written to Kafka) names it, in
        # `x-aibroker-request-id` (`x-request-id` is on every answer, refusals included).
        request_id = answer.headers.get("x-aibroker-request-id")
        if not sync:
            took_ms = (time.perf_counter() - started) * 1000
            self.accepts.append(Accept(time.time(), took_ms, answer.status_code == 202))
        if answer.status_code == 202:
            request_id = request_id or _json(answer).get("id")
        if request_id:
            assert request_id, answer.text
            self.accepted[request_id] = Submitted(
                token, "sync" if sync else "async", deadline, time.time()
            )
            if sync and answer.status_code != 202:
                self._saw_sync(request_id, answer)
            return str(request_id)
        self.refused.append(
            Refusal(
                answer.status_code,
                _json(answer),
                answer.headers.get("retry-after"),
                time.time(),
                token,
            )
        )
        return None

    def _saw_sync(self, request_id: str, answer: httpx.Response) -> None:
        doc = _json(answer)
        if answer.status_code == 200:
            self.seen.setdefault(request_id, []).append({"status": "succeeded", "response": doc})
        else:
            self.sync_errors[request_id] = doc.get("error")

    async def settle(self, client: httpx.AsyncClient, *, timeout_s: float = 120) -> None:
        """Long-poll every accepted request until it is terminal (or `timeout_s` passes)."""
        until = time.monotonic() + timeout_s
        semaphore = asyncio.Semaphore(64)

        async def one(request_id: str) -> None:
            async with semaphore:
                while time.monotonic() < until:
                    try:
                        answer = await client.get(f"/v1/requests/{request_id}", params={"wait": 10})
                    except httpx.TransportError:
                        await asyncio.sleep(0.5)
                        continue
                    doc = _json(answer)
                    if answer.status_code == 200 and doc.get("status") in TERMINAL:
                        self.seen.setdefault(request_id, []).append(doc)
                        return
                    if answer.status_code >= 500:
                        await asyncio.sleep(0.5)

        await asyncio.gather(*(one(i) for i in self.accepted))

    # --- checking --------------------------------------------------------------------------

    def check(
        self,
        *,
        provider_calls: Counter[str],
        published: Counter[str],
        in_flight_at_fault: int = 0,
        deadline_grace_s: float = 10.0,
    ) -> list[str]:
        """Every guarantee the history breaks, in words (empty: none)."""
        broken: list[str] = []
        attempts_total = 0
        for request_id, sent in self.accepted.items():
            terminal = [d for d in self.seen.get(request_id, []) if d.get("status") in TERMINAL]
            if not terminal:
                broken.append(f"{request_id}: accepted, never reached a terminal result")
                continue
            broken += self._check_ended(request_id, sent, terminal, published, deadline_grace_s)
            attempts = int(terminal[-1].get("attempts") or 1)
            attempts_total += attempts
            calls = provider_calls[sent.token]
            if calls > attempts + (1 if in_flight_at_fault else 0):
                broken.append(f"{request_id}: {calls} provider calls for {attempts} attempts")
        calls_total = sum(provider_calls[s.token] for s in self.accepted.values())
        if calls_total > attempts_total + in_flight_at_fault:
            broken.append(
                f"{calls_total} provider calls > {attempts_total} attempts + "
                f"{in_flight_at_fault} in flight at the fault"
            )
        for refusal in self.refused:
            if not _clear_error(_error_of(refusal.body)):
                broken.append(f"refused {refusal.status} without a clear error: {refusal.body}")
            if refusal.status >= 500 and (refusal.status != 503 or not refusal.retry_after):
                broken.append(f"refused with {refusal.status} (only 503 + Retry-After may be)")
        return broken

    def _check_ended(
        self,
        request_id: str,
        sent: Submitted,
        terminal: list[dict[str, Any]],
        published: Counter[str],
        deadline_grace_s: float,
    ) -> list[str]:
        """What one ended request breaks: one result, its own answer, a clear error, its
        deadline kept."""
        broken: list[str] = []
        if len({_outcome(d) for d in terminal}) > 1:
            broken.append(f"{request_id}: clients saw different results {terminal}")
        doc = terminal[-1]
        if request_id in self.sync_errors:
            if doc["status"] == "succeeded":
                broken.append(f"{request_id}: the caller got an error, the state says ok")
            if not _clear_error(self.sync_errors[request_id]):
                broken.append(f"{request_id}: unclear error {self.sync_errors[request_id]}")
        if published[request_id] < 1:
            broken.append(f"{request_id}: no result on the results topic")
        if doc["status"] == "succeeded":
            text = _answer_text(doc)
            if text != f"echo: {sent.token}":
                broken.append(f"{request_id}: answer {text!r} is not its own prompt's")
        elif not _clear_error(doc.get("error")):
            broken.append(f"{request_id}: {doc['status']} without a clear error: {doc}")
        finished = doc.get("finished_at")
        if sent.deadline and finished and finished > sent.deadline + deadline_grace_s:
            broken.append(f"{request_id}: ended {finished - sent.deadline:.1f}s past its deadline")
        return broken

    def refused_but_run(self, provider_calls: Counter[str]) -> int:
        """Refusals whose request reached the provider anyway: a 503 after a write that timed
        out at ingress but landed later (the idempotent producer never drops a batch)."""
        return sum(1 for r in self.refused if r.token and provider_calls[r.token] > 0)

    def summary(self) -> dict[str, int]:
        statuses = Counter(docs[-1].get("status", "?") for docs in self.seen.values() if docs)
        return {
            "accepted": len(self.accepted),
            "refused": len(self.refused),
            "no_answer": self.transport_errors,
            **{f"ended_{k}": v for k, v in sorted(statuses.items())},
        }


async def final_states(client: httpx.AsyncClient, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each request's state once terminal (long-polled; the last state read if it never is)."""

    async def one(request_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for _ in range(6):
            doc = (await client.get(f"/v1/requests/{request_id}", params={"wait": 10})).json()
            if doc.get("status") in TERMINAL:
                break
        return doc

    return dict(zip(ids, await asyncio.gather(*(one(i) for i in ids)), strict=True))


# --- what the provider and Kafka saw ---------------------------------------------------------


async def provider_calls(mock_url: str) -> Counter[str]:
    """The mock's calls, by the token in their prompt."""
    return Counter({token: len(times) for token, times in (await call_times(mock_url)).items()})


async def call_times(mock_url: str) -> dict[str, list[float]]:
    """When the mock was called, by the token in the prompt."""
    async with httpx.AsyncClient(timeout=30) as client:
        calls = (await client.get(f"{mock_url}/_history")).json()["calls"]
    times: dict[str, list[float]] = {}
    for call in calls:
        times.setdefault(call["text"], []).append(call["at"])
    return times


async def published_results(kafka: KafkaSettings, topic: str) -> Counter[str]:
    """Records on the results topic, by request id (duplicates are allowed there: the sinks
    keep the first; the checker looks at what clients saw)."""
    return Counter(r.key.decode() for r in await read_topic(kafka, topic) if r.key)


async def read_topic(
    kafka: KafkaSettings, topic: str, timeout_s: float = 60
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` now, from the beginning to the end offsets read at the start
    (no group: nothing committed)."""
    consumer = make_consumer(kafka, group_id=None)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        partitions = await topic_partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout_s
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} was not read to its end in {timeout_s}s")
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        doc = answer.json()
    except ValueError:
        return {"raw": answer.text[:200]}
    return doc if isinstance(doc, dict) else {"raw": doc}


def _error_of(body: Any) -> Any:
    return body.get("error") if isinstance(body, dict) else None


def _clear_error(error: Any) -> bool:
    return (
        isinstance(error, dict)
        and isinstance(error.get("message"), str)
        and len(error["message"]) >= 10
        and error.get("type") in ERROR_TYPES
    )


def _answer_text(doc: dict[str, Any]) -> str | None:
    try:
        return str(doc["response"]["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError):
        return None


def _outcome(doc: dict[str, Any]) -> tuple[str, str | None]:
    return doc["status"], _answer_text(doc)
