"""The operator's web console in a real browser (Debian's Chromium through Playwright),
against one sandbox: the operator's whole job from creating a customer to opening its
issued invoice, with the customer's requests going through the real proxy in between.

Screenshots of the main pages go to $BEDROCK_BILLING_SCREENSHOTS (else a temporary
folder), each with a small copy (``*-small.png``, 640 px wide) as committed in
docs/console/ and shown in docs/console.md.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("playwright")
pytest.importorskip("jinja2")

MODEL = "anthropic.claude-3-sonnet-20240229-v1:0"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def sandbox():
    """A sandbox whose proxy reads tokens afresh on every request (auth cache off), so a
    suspension made in the console bites at the next request without waiting."""
    from bedrock_billing.sandbox.runner import Sandbox

    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("AWS_", "BEDROCK_BILLING_")):
                mp.delenv(name, raising=False)
        mp.setenv("BEDROCK_BILLING_AUTH_CACHE_TTL", "0")
        box = Sandbox(port=0, tls_port=0).start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture(scope="module")
def console(sandbox):
    from bedrock_billing.console.server import ConsoleServer

    server = ConsoleServer(sandbox.settings(), "127.0.0.1", 0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("BEDROCK_BILLING_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def call_proxy(sandbox, token: str) -> int:
    message = {"role": "user", "content": [{"type": "text", "text": "Hi"}]}
    body = {"modelId": MODEL, "anthropic_version": "bedrock-2023-05-31", "max_tokens": 100,
            "messages": [message]}  # fmt: skip
    request = urllib.request.Request(
        sandbox.proxy_url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )  # fmt: skip
    try:
        with OPENER.open(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code


def snap(browser, page, shots: Path, name: str, width: int = 640, full_page=True) -> None:
    """A screenshot of the page, and a copy ``width`` px wide drawn by the browser itself."""
    full = shots / f"{name}.png"
    page.screenshot(path=str(full), full_page=full_page)
    data = base64.b64encode(full.read_bytes()).decode()
    small = browser.new_page(viewport={"width": width, "height": 400})
    try:
        small.set_content(
            f'<body style="margin:0"><img id="s" style="width:{width}px;display:block" '
            f'src="data:image/png;base64,{data}"></body>'
        )
        small.locator("#s").screenshot(path=str(shots / f"{name}-small.png"))
    finally:
        small.close()


def test_operator_runs_a_customer_through_the_console(chromium, sandbox, console, shots):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"],
                              origin=f"http://127.0.0.1:{console.port}")  # fmt: skip
    page = context.new_page()
    blocked: list[str] = []  # the strict CSP must block nothing the pages need
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    page.goto(console.login_url())
    assert page.url.endswith("/customers")  # the secret became a cookie and left the URL
    assert "secret" not in page.url

    # Create a customer; its token is shown once, with a copy button.
    page.get_by_role("link", name="New customer").click()
    page.get_by_label("Name").fill("Browser Test Ltd")
    page.get_by_label("Billing email").fill("ops@browser.example")
    page.get_by_role("button", name="Create customer").click()
    assert "shown once and cannot be shown again" in page.inner_text("main")
    token = page.get_by_label("Bearer token").input_value()
    page.get_by_role("button", name="Copy token").click()
    page.get_by_text("Token copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == token
    snap(chromium, page, shots, "console-token")
    page.get_by_role("link", name="Go to the customer").click()
    customer_id = page.url.rsplit("/", 1)[1]
    assert token not in page.content()  # never again

    # Without JavaScript (the same session): set a daily limit, and see a bad value refused.
    plain = chromium.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    plain.add_cookies(context.cookies())
    nojs = plain.new_page()
    nojs.goto(page.url)
    nojs.get_by_label("Requests per UTC day").fill("0")
    nojs.get_by_role("button", name="Save limits").click()
    assert "invalid daily limit" in nojs.inner_text("#limits-error")
    nojs.get_by_label("Requests per UTC day").fill("4")
    nojs.get_by_role("button", name="Save limits").click()
    assert "Limits saved" in nojs.inner_text("main")
    assert nojs.get_by_label("Requests per UTC day").input_value() == "4"
    plain.close()

    # Rotate with a grace period: both tokens work, the limit counts them together.
    page.reload()
    page.get_by_role("link", name="Rotate token…").click()
    page.get_by_label("Grace period").fill("1h")
    page.get_by_role("button", name="Rotate token").click()
    new_token = page.get_by_label("Bearer token").input_value()
    assert new_token != token
    assert "works until" in page.inner_text("main")
    statuses = [call_proxy(sandbox, t) for t in (token, new_token, token, new_token, new_token)]
    assert statuses == [200, 200, 200, 200, 429]

    # The requests are in the customer's chart and table, and across customers.
    page.get_by_role("link", name="Go to the customer").click()
    main = page.inner_text("main")
    assert re.search(r"\b4 requests", main)
    assert ": 4 request(s) over" in page.locator("svg.chart").first.get_attribute("aria-label")
    assert page.locator("svg.chart rect").count() >= 1
    assert "grace" in page.inner_text("section[aria-labelledby=tokens-h]")
    snap(chromium, page, shots, "console-customer")
    page.get_by_role("link", name="Usage").click()
    assert "Browser Test Ltd" in page.inner_text("section[aria-labelledby=top-h]")
    page.get_by_role("link", name="Check reconcile status").click()
    page.get_by_text("The counters agree with the usage log").wait_for()
    snap(chromium, page, shots, "console-usage")

    # Suspend (behind a confirmation): the proxy refuses both tokens.
    page.goto(f"http://127.0.0.1:{console.port}/customers/{customer_id}")
    page.get_by_role("link", name="Suspend…").click()
    page.get_by_role("button", name="Suspend").click()
    assert "Customer suspended" in page.inner_text("main")
    assert [call_proxy(sandbox, t) for t in (token, new_token)] == [403, 403]

    # The customers list: searched, with month-to-date usage against limits.
    page.get_by_role("link", name="Customers").click()
    page.get_by_label("Search name, email or id").fill("browser test")
    page.get_by_label("Status").select_option("suspended")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("tbody tr", has_text="Browser Test Ltd")
    assert row.count() == 1 and "suspended" in row.inner_text()
    snap(chromium, page, shots, "console-customers")

    # Draft, then issue the invoice (before the settling window: confirmed as --force is).
    page.get_by_role("link", name="Invoices").click()
    row = page.locator("tbody tr", has_text="Browser Test Ltd")
    assert "draft" in row.inner_text()
    row.get_by_role("link", name="Finalize…").click()
    page.get_by_role("button", name="Issue invoice").click()
    assert "settles at" in page.inner_text("main")  # refused: the month is not over
    page.go_back()
    page.get_by_label("Finalize even before the settling window ends").check()
    page.get_by_role("button", name="Issue invoice").click()
    assert "Invoice issued" in page.inner_text("main")
    row = page.locator("tbody tr", has_text="Browser Test Ltd")
    assert "issued" in row.inner_text()
    snap(chromium, page, shots, "console-invoices")
    row.get_by_role("link", name=re.compile("^BB-")).click()
    assert "Invoice BB-" in page.inner_text("h1") and "DRAFT" not in page.inner_text("h1")
    snap(chromium, page, shots, "console-invoice-document")

    # Phone width: the customer page reflows instead of scrolling sideways.
    phone = chromium.new_context(viewport={"width": 390, "height": 844})
    phone.add_cookies(context.cookies())
    small = phone.new_page()
    small.goto(f"http://127.0.0.1:{console.port}/customers/{customer_id}")
    assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    snap(chromium, small, shots, "console-phone", width=260, full_page=False)
    phone.close()
    context.close()
    assert blocked == []
