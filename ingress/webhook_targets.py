"""Webhooks given with a request (`webhook` in `/v1/requests`, `X-Aibroker-Webhook` on the
other POSTs) or registered for a tenant: checked before anything is accepted."""

from __future__ import annotations

from starlette.datastructures import Headers

from aibroker.errors import InvalidRequest
from aibroker.identity import Client
from aibroker.netguard import check_receiver, networks
from aibroker.settings import WebhookSettings
from aibroker.stores.guard import deadline
from ingress.state import Services
from schemas.envelopes import Webhook


async def check_webhook_url(url: str, settings: WebhookSettings, param: str) -> None:
    """The SSRF guard at registration (the deliverer checks again at each call)."""
    allow = networks(settings.allow)
    await check_receiver(url, allow_http=settings.allow_http, allow=allow, param=param)


async def request_webhook(
    svc: Services, caller: Client, given: Webhook | None, headers: Headers
) -> Webhook | None:
    """The request's webhook, if it has one, once its URL passed the guard and its tenant
    has a secret to sign with."""
    param = "webhook.url"
    if given is None and (url := headers.get("x-aibroker-webhook")):
        given, param = Webhook(url=url), "X-Aibroker-Webhook"
    if given is None:
        return None
    await check_webhook_url(given.url, svc.settings.webhooks, param)
    with deadline(svc.settings.redis.request_timeout_s):
        tenant = await svc.tenants.get(caller.tenant)
    if tenant is None or not tenant.webhook_secrets:
        raise InvalidRequest(
            f"Tenant '{caller.tenant}' has no webhook secret to sign with: an operator sets "
            "one with PUT /admin/v1/tenants/{name} (webhook_secrets).",
            param=param,
        )
    return given
