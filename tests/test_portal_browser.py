"""The customer portal in a real browser (Debian's Chromium through Playwright) against the
sandbox: the customer opens the page, enters the token, and sees what
``bedrock-billing usage --output json`` reports for them and their issued invoice; the
token stays out of the URL and localStorage; the page runs under its strict policy with no
violation, and reads well on a phone-sized screen.

The screenshot goes to ``tmp_path``; with ``UPDATE_DOCS_SCREENSHOTS=1`` a small
copy is written to ``docs/portal.png`` (how the committed one was made)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from tests.portal_support import base_url, cli_usage, get, make_customer

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture
def customers(tls_sandbox):
    a = make_customer(tls_sandbox, requests_made=3, plan="pro", daily_request_limit=100,
                      monthly_token_limit=100000, monthly_budget="25.00")  # fmt: skip
    b = make_customer(tls_sandbox, requests_made=1)
    return a, b


def _sign_in(page, url: str, token: str) -> None:
    page.goto(url)
    page.get_by_label("API token", exact=True).fill(token)
    page.get_by_role("button", name="Show my account").click()
    page.wait_for_selector("body[data-loaded=true]", timeout=20000)


def test_customer_sees_their_usage_limits_and_invoices(chromium, tls_sandbox, customers,
                                                        tmp_path):  # fmt: skip
    a, b = customers
    url = base_url(tls_sandbox) + "/portal"
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    _sign_in(page, url, a.token)

    # The numbers `bedrock-billing usage --output json` reports for this customer.
    period = page.locator("#period").input_value()
    cli = cli_usage(tls_sandbox, a.customer_id, period)
    totals = cli["totals"]
    shown = {
        name: int(page.locator(f"#usage-totals [data-total={name}]").get_attribute("data-value"))
        for name in ("requests", "input_tokens", "output_tokens", "total_tokens")
    }
    assert shown == {name: totals[name] for name in shown}
    assert shown["requests"] == 3
    for row in cli["rows"]:  # one model here: its row carries the same counts
        cells = page.locator(f"#models tr[data-model='{row['model']}'] td")
        assert int(cells.nth(0).get_attribute("data-value")) == row["requests"]
    # The chart draws one bar per day with usage; against the limits, today's requests
    days_used = sum(1 for d in cli["daily"] if d["total_tokens"])
    assert page.locator("#chart svg rect").count() == days_used
    gauge = page.locator("[data-gauge='Requests today'] .value")
    assert gauge.inner_text() == "3 of 100"
    assert page.locator("[data-gauge='Tokens this month'] .value").inner_text() == (
        f"{totals['total_tokens']:,} of 100,000"
    )
    spend = get(tls_sandbox, "/v1/account", a.token).json()["month_to_date"]
    shown_spend = page.locator("[data-gauge='Spend this month (estimate)'] .value").inner_text()
    if spend["spend"] == "0.00":  # three small requests: under a cent, not nothing
        assert spend["spend_exact"] != "0" and shown_spend == "under $0.01 of $25.00"
    else:
        assert shown_spend == f"${spend['spend']} of $25.00"

    # The invoice issued through the services, and its document
    row = page.locator(f"#invoice-list tr[data-invoice='{a.invoice_id}']")
    assert row.count() == 1 and page.locator("#invoice-list tbody tr").count() == 1
    row.get_by_role("button").click()
    page.wait_for_selector("#invoice:not([hidden])")
    assert a.invoice_id in page.locator("#invoice-title").inner_text()
    total = Decimal(a.invoice_total)  # as the services issued it: the pro plan's minimum
    assert total == Decimal("60.00")
    assert page.locator("#invoice-lines tr[data-total=invoice]").inner_text().endswith(
        f"${total:.2f}"
    )

    assert problems == []  # no CSP violation, no script error, no failed request

    # Another customer's data is nowhere, and cannot be fetched with this token
    content = page.content()
    assert b.customer_id not in content and b.invoice_id not in content
    status = page.evaluate(
        """async (id) => (await fetch("v1/account/invoices/" + id, {headers: {Authorization:
            "Bearer " + sessionStorage.getItem("bedrock-billing-portal-token")}})).status""",
        b.invoice_id,
    )
    assert status == 404

    # The token: in this tab's sessionStorage only; not in the URL, localStorage or the page
    assert a.token not in page.url and "token" not in page.url
    assert page.evaluate("() => localStorage.length") == 0
    assert page.evaluate("() => sessionStorage.getItem('bedrock-billing-portal-token')") == a.token
    assert a.token not in content

    page.screenshot(path=str(tmp_path / "portal.png"), full_page=True)
    assert (tmp_path / "portal.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        small = chromium.new_context(viewport={"width": 1280, "height": 900},
                                     device_scale_factor=0.6)  # fmt: skip
        shot = small.new_page()
        _sign_in(shot, url, a.token)
        shot.locator(f"#invoice-list tr[data-invoice='{a.invoice_id}'] button").click()
        shot.wait_for_selector("#invoice:not([hidden])")
        shot.screenshot(path=str(DOCS / "portal.png"), full_page=True)
        small.close()

    # Sign out forgets the token; a new tab (a new session) starts signed out
    page.get_by_role("button", name="Sign out").click()
    assert page.evaluate("() => sessionStorage.length") == 0
    context.close()


def test_portal_reads_well_on_a_phone_and_refuses_a_wrong_token(chromium, tls_sandbox):
    url = base_url(tls_sandbox) + "/portal"
    context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(url)
    wrong = "bbk_wrong-token-0123456789abcdefghijklmnopqrstu"
    page.get_by_label("API token", exact=True).fill(wrong)
    page.keyboard.press("Enter")  # keyboard alone submits the form
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "not accepted" in alert.inner_text()
    assert page.evaluate("() => sessionStorage.length + localStorage.length") == 0
    assert "bbk_" not in page.url
    # Signed in, with usage and an invoice open: no sideways scrolling at phone width
    customer = make_customer(tls_sandbox, requests_made=1)
    _sign_in(page, url, customer.token)
    page.locator(f"#invoice-list tr[data-invoice='{customer.invoice_id}'] button").click()
    page.wait_for_selector("#invoice:not([hidden])")
    assert page.locator("#chart svg").is_visible()
    assert page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    context.close()
