"""The operator console in headless Chromium against the running stack: sign in, create a tenant
and a key, see spend move after traffic, cancel a batch, replay a dead letter, a request's
attempts after injected 503s, a key's last use, providers and pools refreshed live, cache hits
and guardrail blocks, a tenant admin kept to its own tenant, and an OIDC sign-in (code flow
with PKCE, against the test issuer). Needs Debian's `chromium` and `chromium-driver` and the
`selenium` package; without them these tests skip, saying what is missing.

`AIBROKER_CONSOLE_SCREENSHOTS=docs/img/console` writes the pages' screenshots for the docs."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from loadtest.stack import Stack
from tests.e2e.conftest import ROUTES, running_stack
from tests.jwks import LocalIssuer
from tests.services import KafkaService, RedisService

pytestmark = [pytest.mark.e2e]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT_S = 30.0
TENANT = f"console-{uuid.uuid4().hex[:6]}"

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the skip below says so
    webdriver = None  # type: ignore[assignment]


def _missing() -> str | None:
    if webdriver is None:
        return "the console tests need the `selenium` package (the test extra)"
    if CHROMIUM is None or CHROMEDRIVER is None:
        return "the console tests need Chromium: apt-get install chromium chromium-driver"
    return None


@pytest.fixture(scope="module")
def oidc() -> Iterator[LocalIssuer]:
    """The test OIDC issuer, served from a thread of its own (these tests are synchronous)."""
    issuer = LocalIssuer()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        async with issuer.serving():
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(30), "the test issuer did not start"
    try:
        yield issuer
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaService,
    redis_svc: RedisService,
    tmp_path_factory: pytest.TempPathFactory,
    oidc: LocalIssuer,
) -> Iterator[Stack]:
    """The module's broker, with the response cache on (for the cache page) and the test
    issuer trusted (for the OIDC sign-in)."""
    issuers = json.dumps([oidc.config().model_dump(mode="json")])
    env = {"AIBROKER_CACHE_ENABLED": "true", "AIBROKER_AUTH_JWT_ISSUERS": issuers}
    logs = tmp_path_factory.mktemp("stack")
    with running_stack(kafka, redis_svc, logs, routes_yaml=ROUTES, extra_env=env) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1366,860")  # a laptop screen
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: the docs' folder when asked, else a temporary one."""
    asked = os.environ.get("AIBROKER_CONSOLE_SCREENSHOTS")
    return Path(asked) if asked else tmp_path_factory.mktemp("console-shots")


def until(driver: WebDriver, probe: Callable[[WebDriver], Any], what: str) -> Any:
    """Wait for `probe` to hold (a page re-rendering under it is retried, not failed)."""

    def safe(d: WebDriver) -> Any:
        try:
            return probe(d)
        except StaleElementReferenceException:
            return None

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(safe, f"{what}")


def find(driver: WebDriver, css: str) -> WebElement:
    found: WebElement = until(driver, lambda d: d.find_element(By.CSS_SELECTOR, css), css)
    return found


def has_text(driver: WebDriver, css: str, text: str) -> WebElement:
    def probe(d: WebDriver) -> WebElement | None:
        for element in d.find_elements(By.CSS_SELECTOR, css):
            if text in element.text:
                return element
        return None

    found: WebElement = until(driver, probe, f"{text!r} in {css}")
    return found


def type_into(driver: WebDriver, css: str, text: str) -> None:
    element = find(driver, css)
    element.clear()
    element.send_keys(text)


def goto(driver: WebDriver, stack: Stack, page: str) -> None:
    driver.get(f"{stack.url}/console/#/{page}")
    driver.refresh()  # a hash change alone keeps the page: load it afresh


def sign_in(driver: WebDriver, stack: Stack, key: str) -> None:
    driver.get(f"{stack.url}/console/")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    type_into(driver, "#admin-key", key)
    find(driver, ".signin button[type=submit]").click()
    find(driver, "[data-testid=who]")


def shot(driver: WebDriver, folder: Path, name: str) -> None:
    """The whole page (up to a tall laptop's height), as the docs show it."""
    path = folder / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1366, min(max(int(height) + 140, 860), 1400))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(1366, 860)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def made(browser: WebDriver, stack: Stack, shots: Path) -> dict[str, str]:
    """Signed in as the admin, the console created a tenant and a tenant-admin key for it."""
    sign_in(browser, stack, stack.admin_key)
    has_text(browser, "[data-testid=who]", "bootstrap")
    goto(browser, stack, "tenants")
    type_into(browser, "#new-tenant", TENANT)
    find(browser, "form[aria-label='New tenant'] button").click()
    has_text(browser, "[data-testid=tenants] tbody", TENANT)
    goto(browser, stack, f"keys/{TENANT}")
    type_into(browser, "#key-name", "console test")
    find(browser, "#key-role option[value=tenant_admin]").click()
    find(browser, "form[aria-labelledby=newkey-title] button[type=submit]").click()
    key = find(browser, "[data-testid=new-key]").text
    has_text(browser, "[data-testid=keys] tbody", "tenant_admin")
    shot(browser, shots, "keys")
    return {"tenant": TENANT, "key": key}


def test_sign_in_creates_a_tenant_and_a_key_that_works(
    browser: WebDriver, stack: Stack, made: dict[str, str]
) -> None:
    assert made["key"].startswith("aib_")
    listed = httpx.get(
        f"{stack.url}/v1/models", headers={"Authorization": f"Bearer {made['key']}"}, timeout=10
    )
    assert listed.status_code == 200
    wrong = httpx.get(f"{stack.url}/console/", timeout=10)
    assert "frame-ancestors 'none'" in wrong.headers["content-security-policy"]


def test_spend_moves_after_traffic(
    browser: WebDriver, stack: Stack, made: dict[str, str], shots: Path
) -> None:
    goto(browser, stack, f"tenants/{made['tenant']}")
    type_into(browser, "#limit-budget_usd_month", "25")
    find(browser, "form[aria-labelledby=limits-title] button[type=submit]").click()
    has_text(browser, "[data-testid=tenant-spend]", "of $25.00")
    assert "$0.00 of" in find(browser, "[data-testid=tenant-spend]").text
    headers = {"Authorization": f"Bearer {made['key']}"}
    body = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello " * 200}]}
    for _ in range(5):
        answer = httpx.post(
            f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30
        )
        assert answer.status_code == 200, answer.text

    def spent(d: WebDriver) -> bool:
        d.refresh()
        text = find(d, "[data-testid=tenant-spend]").text
        return "$0.00 of" not in text and "of $25.00" in text

    until(browser, spent, "the tenant's spend above $0.00")

    def charted(d: WebDriver) -> bool:
        d.refresh()
        find(d, "figure.chart")  # the usage answered (a table, or "no usage yet")
        return bool(d.find_elements(By.CSS_SELECTOR, "[data-testid=table-cost-by-model-usd-]"))

    until(browser, charted, "the cost chart's numbers")
    table = find(browser, "[data-testid=table-cost-by-model-usd-]")
    assert "mock/echo" in table.text
    assert find(browser, "figure.chart canvas")  # uPlot drew it
    shot(browser, shots, "tenant")
    goto(browser, stack, "tenants")
    has_text(browser, f"tr[data-tenant='{made['tenant']}'] .spend", "of $25.00")
    shot(browser, shots, "tenants")


def test_a_batch_is_cancelled_from_its_row(
    browser: WebDriver, stack: Stack, made: dict[str, str], shots: Path
) -> None:
    headers = {"Authorization": f"Bearer {made['key']}"}
    lines = [
        {
            "custom_id": f"line-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "mock/latency-200", "messages": [{"role": "user", "content": "x"}]},
        }
        for i in range(300)
    ]
    data = b"\n".join(orjson.dumps(line) for line in lines) + b"\n"
    uploaded = httpx.post(
        f"{stack.url}/v1/files",
        headers=headers,
        files={"file": ("in.jsonl", io.BytesIO(data))},
        data={"purpose": "batch"},
        timeout=30,
    )
    assert uploaded.status_code == 200, uploaded.text
    batch = httpx.post(
        f"{stack.url}/v1/batches",
        headers=headers,
        json={"input_file_id": uploaded.json()["id"], "endpoint": "/v1/chat/completions"},
        timeout=30,
    ).json()
    goto(browser, stack, "batches")
    type_into(browser, "#tenant-key", made["key"])
    find(browser, "form[aria-label='Tenant key'] button").click()
    row = f"tr[data-batch='{batch['id']}']"
    has_text(browser, f"{row} .status", "in_progress")
    shot(browser, shots, "batches")
    find(browser, f"{row} button.danger").click()
    has_text(browser, f"{row} .done", "Now cancelling.")

    def cancelled(d: WebDriver) -> bool:
        d.refresh()
        return "cancelled" in find(d, f"{row} .status").text

    until(browser, cancelled, "the batch cancelled")
    state = httpx.get(f"{stack.url}/v1/batches/{batch['id']}", headers=headers, timeout=10).json()
    assert state["status"] == "cancelled"


def test_a_dead_letter_is_replayed(
    browser: WebDriver, stack: Stack, made: dict[str, str], shots: Path
) -> None:
    headers = {"Authorization": f"Bearer {made['key']}"}
    body = {"model": "mock/echo", "messages": [{"role": "user", "content": "x"}]}
    httpx.post(f"{stack.mock_url}/_control", json={"error_rate": 1.0, "error_status": 503})
    try:
        failed = httpx.post(
            f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=60
        )
    finally:
        httpx.post(f"{stack.mock_url}/_control", json={})
    assert failed.status_code == 502
    request_id = failed.headers["x-request-id"]
    goto(browser, stack, "dlq")
    row = f"tr[data-request='{request_id}']"

    def listed(d: WebDriver) -> bool:
        d.refresh()
        find(d, "[data-testid=dlq]")  # the list answered
        return bool(d.find_elements(By.CSS_SELECTOR, row))

    until(browser, listed, "the dead letter listed")
    assert "exhausted" in find(browser, row).text
    find(browser, "#dlq-kind option[value=exhausted]").click()
    rows = browser.find_elements(By.CSS_SELECTOR, "[data-testid=dlq] tbody tr")
    assert rows
    assert all("exhausted" in r.text for r in rows)
    shot(browser, shots, "dead-letters")
    find(browser, f"{row} button").click()
    done = has_text(browser, ".done", "Replayed 1:")
    replayed_id = done.text.rsplit(" ", 1)[-1]
    assert replayed_id != request_id

    def ended() -> str:
        doc = httpx.get(
            f"{stack.url}/v1/requests/{replayed_id}", headers=headers, params={"wait": 10}
        ).json()
        return str(doc["status"])

    assert ended() == "succeeded"


def test_a_request_is_found_by_id_with_its_attempts(
    browser: WebDriver, stack: Stack, made: dict[str, str], shots: Path
) -> None:
    """The first target answers 503, the fallback serves: the story shows each attempt with
    its target, status and duration, and the fallback between them."""
    headers = {"Authorization": f"Bearer {made['key']}"}
    body = {"model": "falls-back", "messages": [{"role": "user", "content": "x"}]}
    answer = httpx.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["x-request-id"]
    goto(browser, stack, "requests")
    type_into(browser, "#request-id", request_id)
    find(browser, "form[aria-label='Find a request'] button[type=submit]").click()
    status = has_text(browser, "[data-testid=request-status]", "succeeded")
    assert "mock/echo" in status.text
    assert int(find(browser, "[data-testid=request-attempt-count]").text) >= 2

    def told(d: WebDriver) -> list[WebElement]:
        # the usage consumer tells the calls a moment after they end: look again until then
        rows = d.find_elements(By.CSS_SELECTOR, "[data-testid=request-story] tr.step-attempt")
        if not any("mock/echo" in r.text for r in rows):
            find(d, "form[aria-label='Find a request'] button.secondary").click()
            return []
        return rows

    rows = until(browser, told, "the attempts in the story")
    failed = [r for r in rows if "mock/fail-503" in r.text]
    assert failed
    assert all("failed" in r.text and " ms" in r.text for r in failed)
    assert "answered" in rows[-1].text
    assert "mock/echo" in rows[-1].text
    fell = find(browser, "[data-testid=request-story] tr.step-fallback").text
    assert "mock/fail-503" in fell
    assert "mock/echo" in fell
    shot(browser, shots, "request")
    story = httpx.get(
        f"{stack.url}/admin/v1/requests/{request_id}/story",
        headers={"Authorization": f"Bearer {stack.admin_key}"},
        timeout=10,
    ).json()  # what the page showed, with curl
    assert [a["status"] for a in story["attempts"]][-1] == "ok"
    assert story["fallbacks"] == 1
    assert all(a["duration_ms"] > 0 for a in story["attempts"])


def test_a_keys_last_use_is_shown(browser: WebDriver, stack: Stack, made: dict[str, str]) -> None:
    """The tenant admin's key answered calls above: its row says when it was last used."""
    goto(browser, stack, f"keys/{made['tenant']}")
    row = has_text(browser, "[data-testid=keys] tbody tr", "tenant_admin")
    used = row.find_element(By.CSS_SELECTOR, ".last-used").text
    assert used
    assert used != "never"
    listed = httpx.get(
        f"{stack.url}/admin/v1/keys",
        params={"tenant": made["tenant"]},
        headers={"Authorization": f"Bearer {stack.admin_key}"},
        timeout=10,
    ).json()["data"]
    (key,) = [k for k in listed if k["roles"] == ["tenant_admin"]]
    assert time.time() - 600 < key["last_used_at"] <= time.time()


def test_providers_and_pools_refresh_live(
    browser: WebDriver, stack: Stack, made: dict[str, str], shots: Path
) -> None:
    """Breakers, each pool's lag and the error rate by model (the 503s of `falls-back` above),
    read again every few seconds without a reload."""
    goto(browser, stack, "pools")
    has_text(browser, "[data-testid=reachability]", "Kafka: ok")
    lags = until(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=pools] td.lag"),
        "the pools' lag",
    )
    assert all(cell.text.isdigit() for cell in lags)
    rate = find(browser, "[data-testid=error-rates] tr[data-model=falls-back] .rate").text
    assert rate.endswith("%")
    assert float(rate[:-1]) > 0
    first = find(browser, "[data-testid=read-at]").text
    until(browser, lambda d: find(d, "[data-testid=read-at]").text != first, "a live refresh")
    shot(browser, shots, "pools")


def test_cache_hits_and_guard_blocks_are_shown(
    browser: WebDriver, stack: Stack, made: dict[str, str], shots: Path
) -> None:
    admin_headers = {"Authorization": f"Bearer {stack.admin_key}"}
    policy = {"input": {"pii": "block"}}
    put = httpx.put(
        f"{stack.url}/admin/v1/guardrails/{made['tenant']}",
        json=policy,
        headers=admin_headers,
        timeout=10,
    )
    assert put.status_code == 200, put.text
    headers = {"Authorization": f"Bearer {made['key']}"}
    try:
        text = "IBAN DE89 3704 0044 0532 0130 00"
        pii = {"model": "mock/echo", "messages": [{"role": "user", "content": text}]}
        blocked = httpx.post(
            f"{stack.url}/v1/chat/completions", json=pii, headers=headers, timeout=30
        )
        assert blocked.status_code == 400, blocked.text
    finally:
        httpx.put(
            f"{stack.url}/admin/v1/guardrails/{made['tenant']}",
            json={},
            headers=admin_headers,
            timeout=10,
        )
    body = {
        "model": "mock/echo",
        "temperature": 0,
        "messages": [{"role": "user", "content": f"cache me {uuid.uuid4().hex}"}],
    }
    marks = []
    for _ in range(2):
        answer = httpx.post(
            f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=30
        )
        assert answer.status_code == 200, answer.text
        marks.append(answer.headers["x-aibroker-cache"])
    assert marks == ["miss", "hit"]
    background = {"model": "mock/latency-8000", "input": "in flight", "background": True}
    queued = httpx.post(f"{stack.url}/v1/responses", json=background, headers=headers, timeout=30)
    assert queued.status_code == 200, queued.text
    goto(browser, stack, "insights")
    has_text(browser, "[data-testid=responses-in-flight]", queued.json()["id"])
    row = f"[data-testid=cache-stats] tr[data-row='{made['tenant']}/mock/echo']"
    has_text(browser, f"{row} .rate", "50.0%")
    assert "%" in find(browser, "[data-testid=cache-totals] .hit-rate").text

    def blocked_shown(d: WebDriver) -> bool:
        found = d.find_elements(By.CSS_SELECTOR, "[data-testid=guard-hits] tbody tr")
        return any(made["tenant"] in r.text and "pii" in r.text for r in found)

    until(browser, blocked_shown, "the blocked request counted")
    shot(browser, shots, "insights")


def test_a_tenant_admin_sees_its_own_tenant_only(
    browser: WebDriver, stack: Stack, made: dict[str, str], shots: Path
) -> None:
    sign_in(browser, stack, made["key"])
    has_text(browser, "[data-testid=who]", made["tenant"])
    caller = httpx.get(
        f"{stack.url}/admin/v1/caller",
        headers={"Authorization": f"Bearer {made['key']}"},
        timeout=10,
    ).json()
    assert caller["roles"] == ["tenant_admin"]
    assert caller["tenant"] == made["tenant"]
    assert "keys:write" in caller["permissions"]
    assert "tenants:write" not in caller["permissions"]
    goto(browser, stack, "tenants")
    rows = until(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=tenants] tbody tr"),
        "the tenant list",
    )
    assert [r.get_attribute("data-tenant") for r in rows] == [made["tenant"]]
    assert not browser.find_elements(By.CSS_SELECTOR, "#new-tenant")  # it may not create one
    goto(browser, stack, "tenants/tenant-a")
    has_text(browser, ".problem", "Not allowed for this key")
    goto(browser, stack, "keys/tenant-a")
    has_text(browser, ".problem", "(403)")
    goto(browser, stack, "audit")
    find(browser, "form[aria-label='Filter the audit log'] button").click()
    audit = has_text(browser, "[data-testid=audit]", "key.create")
    assert made["tenant"] in audit.text
    assert "tenant-a" not in audit.text  # its refusals there are tenant-a's entries, not its own
    shot(browser, shots, "audit")


def test_a_viewer_sees_everything_and_may_change_nothing(
    browser: WebDriver, stack: Stack, made: dict[str, str]
) -> None:
    created = httpx.post(
        f"{stack.url}/admin/v1/keys",
        json={"roles": ["viewer"], "name": "console viewer"},
        headers={"Authorization": f"Bearer {stack.admin_key}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    sign_in(browser, stack, created.json()["key"])
    has_text(browser, "[data-testid=who]", "viewer")
    goto(browser, stack, "tenants")
    has_text(browser, "[data-testid=tenants] tbody", made["tenant"])
    has_text(browser, "[data-testid=tenants] tbody", "tenant-a")
    assert not browser.find_elements(By.CSS_SELECTOR, "#new-tenant")
    goto(browser, stack, f"tenants/{made['tenant']}")
    has_text(browser, "form[aria-labelledby=limits-title]", "may not change tenants")
    assert not find(browser, "#limit-budget_usd_month").is_enabled()
    goto(browser, stack, "dlq")
    find(browser, "[data-testid=dlq]")
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid=dlq] button")


def test_oidc_sign_in_with_authorization_code_and_pkce(
    browser: WebDriver, stack: Stack, made: dict[str, str], oidc: LocalIssuer, shots: Path
) -> None:
    """Signed in through the trusted issuer's code flow with PKCE: the console exchanged the
    code (with its verifier) for an ID token, and the admin API knows the caller by it."""
    oidc.login = {"sub": "alice", "roles": ["viewer"]}
    browser.get(f"{stack.url}/console/")
    browser.execute_script("sessionStorage.clear()")  # signed out
    browser.get(f"{stack.url}/console/?code=stolen&state=forged")
    has_text(browser, ".problem", "not started in this tab")  # a code this tab did not ask for
    assert oidc.exchanged == 0
    shot(browser, shots, "sign-in")
    find(browser, f"button.oidc[data-issuer='{oidc.issuer}']").click()
    who = has_text(browser, "[data-testid=who]", "jwt:alice")
    assert "viewer" in who.text
    assert oidc.exchanged == 1
    assert not oidc.codes  # spent
    assert "code=" not in browser.current_url
    goto(browser, stack, "tenants")
    has_text(browser, "[data-testid=tenants] tbody", made["tenant"])
    token = browser.execute_script("return sessionStorage.getItem('aibroker.console.admin_key')")
    caller = httpx.get(
        f"{stack.url}/admin/v1/caller", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()  # the same token works with curl
    assert (caller["subject"], caller["roles"]) == ("jwt:alice", ["viewer"])
