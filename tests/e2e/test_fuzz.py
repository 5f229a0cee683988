"""Schemathesis against the running ingress's own OpenAPI document: generated valid and
invalid input on every operation, then stateful runs following its links (submit → poll →
cancel). No 5xx; every answer has a documented status, content type and schema; every error
is an OpenAI-style error object. Bodies that are too large, too deep or not UTF-8 are refused
before they are read whole."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi import checks as openapi_checks

from loadtest.procs import rss_mb
from loadtest.stack import Stack
from tests.e2e.conftest import running_stack
from tests.services import KafkaService, RedisService

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLES = int(os.environ.get("AIBROKER_FUZZ_EXAMPLES", "12"))
"""Cases per operation. The short default is derandomized (the same cases every run, so a
failure in CI is reproducible); a longer run (`AIBROKER_FUZZ_EXAMPLES=200`) explores anew."""
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=EXAMPLES <= 12,
)


@schemathesis.check
def openai_style_error(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> None:
    """Every 4xx and 5xx body is `{"error": {"message", "type", ...}}` with a real message."""
    if response.status_code < 400:
        return None
    try:
        error = response.json().get("error")
    except ValueError:
        error = None
    if not (isinstance(error, dict) and error.get("message") and error.get("type")):
        shown = response.text[:200]
        raise AssertionError(f"{response.status_code} without an OpenAI-style error: {shown}")
    return None


CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openai_style_error,
]


@pytest.fixture(scope="module")
def fuzzed(
    kafka: KafkaService, redis_svc: RedisService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The broker with its RAG worker, so the retrieval routes are fuzzed as they run (no
    embeddings pool: what the fuzzer sends never reaches a model that could answer it)."""
    with running_stack(kafka, redis_svc, tmp_path_factory.mktemp("fuzz"), rag=True) as stack:
        yield stack


def headers_for(stack: Stack, path: str) -> dict[str, str]:
    key = stack.admin_key if path.startswith("/admin/") else stack.api_key
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def api_schema(fuzzed: Stack) -> Any:
    return schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")


def test_every_operation_under_generated_input(api_schema: Any, fuzzed: Stack) -> None:
    """Each operation in turn, with Hypothesis drawing cases from its own strategy (one
    pytest test: the schema comes from the running stack, known only once it is up)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @FUZZ
        def check(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(
                base_url=fuzzed.url,
                headers=headers_for(fuzzed, case.path),
                checks=CHECKS,
                timeout=60,
            )

        check()


def test_submit_poll_cancel_statefully(api_schema: Any, fuzzed: Stack) -> None:
    machine = api_schema.as_state_machine()

    class Flow(machine):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {
                "base_url": fuzzed.url,
                "headers": headers_for(fuzzed, case.path),
                "timeout": 60,
            }

        def validate_response(
            self, response: Any, case: schemathesis.Case[Any], **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=CHECKS)

    Flow.run(settings=settings(max_examples=15, stateful_step_count=4, deadline=None))


# --- bodies refused before they are read whole ------------------------------------------------


@pytest.fixture
async def client(fuzzed: Stack) -> Any:
    async with httpx.AsyncClient(
        base_url=fuzzed.url, headers=headers_for(fuzzed, "/v1"), timeout=30
    ) as http:
        yield http


async def test_an_oversized_body_is_refused_unread(fuzzed: Stack) -> None:
    """A declared 256 MiB body: 413 after the headers, before the body is sent."""
    host, port = fuzzed.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {fuzzed.api_key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 268435456\r\n\r\n"
    )
    writer.write(head.encode() + b"[" * 65536)
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.split()[1] == b"413", status_line


async def test_an_endless_chunked_body_is_cut_off(fuzzed: Stack, client: httpx.AsyncClient) -> None:
    """No length declared: ingress stops at its limit, and its memory shows it never held it."""
    ingress = fuzzed.procs["ingress"].pid
    before = rss_mb(ingress)

    async def endless() -> AsyncIterator[bytes]:
        chunk = b"x" * 65536
        for _ in range(2048):  # 128 MiB if it were all read
            yield chunk

    answer = await client.post(
        "/v1/chat/completions", content=endless(), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert rss_mb(ingress) - before < 64


async def test_deeply_nested_and_non_utf8_bodies_get_a_clear_400(client: httpx.AsyncClient) -> None:
    deep = b'{"model": "mock/echo", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for body in (
        deep,
        b'{"model": "mock/echo", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
    ):
        answer = await client.post(
            "/v1/chat/completions", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["message"]


async def test_another_tenants_ids_are_not_found(fuzzed: Stack, client: httpx.AsyncClient) -> None:
    submitted = await client.post(
        "/v1/requests",
        json={
            "endpoint": "/v1/chat/completions",
            "body": {"model": "mock/echo", "messages": [{"role": "user", "content": "mine"}]},
        },
    )
    request_id = submitted.json()["id"]
    other = {"Authorization": f"Bearer {fuzzed.new_key('tenant-other')}"}
    for method in ("GET", "DELETE"):
        answer = await client.request(method, f"/v1/requests/{request_id}", headers=other)
        assert answer.status_code == 404
        assert answer.json()["error"]["type"] == "invalid_request_error"
