"""The one accept pipeline: every route that takes a request (the OpenAI routes, `/v1/ocr`,
`/v1/requests`) parses its body and hands it to `accept`, which runs the same steps for all:
the body's kind checks, the model, the wait, the deadline, the webhook, the cache directive,
the envelope, the input guardrails (`guardrails`: the body redacted, or refused, before
anything is written) and the Kafka write (or, for a response-cache hit, the end recorded and
answered at once: `cache_hits`). Batch lines are checked by the same `check_body` where the batch is
created, and are looked up in the cache by the dispatcher."""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import Response

from aibroker.identity import Client
from aibroker.rules.cache_key import directive
from ingress.auth import check_model
from ingress.body_checks import check_body
from ingress.deadline import request_deadline
from ingress.guardrails import guarded
from ingress.prefer import parse_prefer, sync_wait_s
from ingress.responses_continue import continued
from ingress.state import Services
from ingress.webhook_targets import request_webhook
from schemas.bodies import Body, kind_of
from schemas.envelopes import Mode, Webhook
from schemas.responses import ResponsesRequest


@dataclass(frozen=True)
class Wrapper:
    """The document a body came inside (`POST /v1/requests`): errors name the body's fields
    under `body.`, the answer is 202 whatever `Prefer` says, and the document may set a
    deadline (the earliest of it and the headers' wins) and a webhook of its own."""

    deadline: float | None = None
    webhook: Webhook | None = None


async def accept(
    svc: Services, caller: Client, body: Body, headers: Headers, wrapper: Wrapper | None = None
) -> Response:
    """The answer to a request for `body`: 200 with its result (sync), 202 with its id
    (`Prefer: respond-async`, a sync wait that ran out, or a `wrapper`), or the refusal
    (4xx before anything is written; 503 when Kafka did not acknowledge the write)."""
    body = await continued(svc, caller, body)  # `previous_response_id`: the turns so far
    kind = kind_of(body)
    where = "" if wrapper is None else "body."
    vector_store = bool(svc.settings.embeddings.qdrant_url)
    check_body(body, svc.routes, vector_store=vector_store, where=where)
    await check_model(svc, caller, body.model, kind)
    limit_s = svc.settings.ingress.sync_wait_s
    prefer = parse_prefer(headers.getlist("prefer"))
    wait_s = None if wrapper or _background(body) else sync_wait_s(prefer, limit_s)
    deadline = request_deadline(headers, time.time(), wrapper.deadline if wrapper else None)
    webhook = await request_webhook(svc, caller, wrapper.webhook if wrapper else None, headers)
    envelope = svc.submission.envelope(
        caller,
        kind,
        body.model,
        body.model_dump(exclude_unset=True),
        Mode.ASYNC if wait_s is None else Mode.SYNC,
        deadline=deadline,
        webhook=webhook,
    )
    said = directive(headers.getlist("cache-control"), headers.get("x-aibroker-cache"))
    envelope = await guarded(svc, envelope.model_copy(update={"cache": said}))
    return await svc.submission.submit(envelope, wait_s, headers.get("idempotency-key"))


def _background(body: Body) -> bool:
    """A Responses API request with `background: true` is answered at once, as `Prefer:
    respond-async` is."""
    return isinstance(body, ResponsesRequest) and body.background
