"""The customer portal's endpoints over HTTP, on the sandbox's real proxy: each answers the
token's own customer only (another customer's invoice number is a 404, never a 403), a
missing or wrong token is a JSON 401, a bad period a JSON 400; the page is static under a
strict Content-Security-Policy; and looking at the portal is never model usage."""

from __future__ import annotations

import re

import pytest

from bedrock_billing.core.timeutil import Period
from tests.portal_support import call_model, cli_usage, get, make_customer

ENDPOINTS = ["/v1/account", "/v1/account/usage", "/v1/account/invoices"]


@pytest.fixture(scope="module")
def two(tls_sandbox):
    """Customer A (limits, 2 calls, an invoice) and customer B (1 call, an invoice)."""
    a = make_customer(
        tls_sandbox, requests_made=2, daily_request_limit=50, monthly_budget="20.00"
    )
    b = make_customer(tls_sandbox, requests_made=1)
    return a, b


def test_account_shows_own_limits_plan_and_month_to_date(tls_sandbox, two):
    a, b = two
    answer = get(tls_sandbox, "/v1/account", a.token)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["customer_id"] == a.customer_id and b.customer_id not in answer.text
    assert body["plan"] == "payg" and body["status"] == "active"
    assert body["limits"]["daily_request_limit"] == 50
    assert body["limits"]["monthly_budget"] == "20.00"
    assert body["limits"]["monthly_token_limit"] is None
    mtd = body["month_to_date"]
    assert mtd["requests_today"] == 2 and mtd["requests"] == 2
    assert body["remaining"]["requests_today"] == 48
    # The meter's tokens are the day counters' tokens: what `usage` reports.
    period = body["period"]
    cli = cli_usage(tls_sandbox, a.customer_id, period)
    assert mtd["tokens"] == cli["totals"]["total_tokens"] > 0
    spent = float(mtd["spend_exact"])
    assert float(body["remaining"]["budget"]) == pytest.approx(20 - spent, abs=0.01)


def test_usage_per_day_and_model_is_what_the_cli_reports(tls_sandbox, two):
    a, _ = two
    period = str(Period.of(tls_sandbox.clock()))
    answer = get(tls_sandbox, "/v1/account/usage", a.token, params={"period": period})
    assert answer.status_code == 200
    body = answer.json()
    cli = cli_usage(tls_sandbox, a.customer_id, period)
    assert body["totals"] == cli["totals"]
    assert [{k: v for k, v in r.items() if k != "customer_id" and k != "customer_name"}
            for r in cli["rows"]] == body["rows"]  # fmt: skip
    assert len(body["daily"]) == Period.parse(period).last_day.day  # every day of the month
    assert sum(d["requests"] for d in body["daily"]) == 2
    # Another month: zeros, still the whole month
    empty = get(tls_sandbox, "/v1/account/usage", a.token, params={"period": "2020-02"}).json()
    assert empty["totals"]["requests"] == 0 and len(empty["daily"]) == 29


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "26-01", "abc", "", "2026-01-01",
                                    "1999-12", "２０２６-０１"])  # fmt: skip
def test_bad_period_is_a_json_400(tls_sandbox, two, period):
    a, _ = two
    answer = get(tls_sandbox, "/v1/account/usage", a.token, params={"period": period})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_period"


def test_two_periods_is_a_json_400(tls_sandbox, two):
    a, _ = two
    answer = get(tls_sandbox, "/v1/account/usage?period=2026-01&period=2026-02", a.token)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_period"


def test_invoices_list_and_document_are_the_customers_own(tls_sandbox, two):
    a, b = two
    listed = get(tls_sandbox, "/v1/account/invoices", a.token).json()
    ids = [i["id"] for i in listed["invoices"]]
    assert ids == [a.invoice_id] and b.invoice_id not in ids
    entry = listed["invoices"][0]
    assert entry["status"] == "issued" and re.fullmatch(r"\d+\.\d\d", entry["total"])
    doc = get(tls_sandbox, f"/v1/account/invoices/{a.invoice_id}", a.token)
    assert doc.status_code == 200
    body = doc.json()
    assert body["id"] == a.invoice_id and body["customer_id"] == a.customer_id
    assert body["total"] == entry["total"] and body["lines"]
    # The operator's numbers stay the operator's.
    for secret in ("margin", "price_book", "unpriced", '"cost"'):
        assert secret not in doc.text


def test_another_customers_invoice_is_not_found_not_forbidden(tls_sandbox, two):
    a, b = two
    own_digits = a.invoice_id.split("-")[2]
    numbers = [b.invoice_id, b.invoice_id + "-R2", a.invoice_id.replace("BB-", "bb-"),
               "BB-209901-" + own_digits, "../" + b.invoice_id, "x"]  # fmt: skip
    for number in numbers:
        answer = get(tls_sandbox, f"/v1/account/invoices/{number}", a.token)
        assert answer.status_code == 404, number
        assert answer.json()["error"]["code"] in ("not_found",)
        assert b.customer_id not in answer.text
    # B sees its own; the customer id in a query string changes nothing
    own = get(tls_sandbox, f"/v1/account/invoices/{b.invoice_id}", b.token)
    assert own.status_code == 200
    spoofed = get(tls_sandbox, "/v1/account", a.token, params={"customer_id": b.customer_id})
    assert spoofed.json()["customer_id"] == a.customer_id


@pytest.mark.parametrize("path", [*ENDPOINTS, "/v1/account/invoices/BB-202601-ABCDEF012345"])
@pytest.mark.parametrize(
    "auth", [None, "Bearer ", "Bearer bbk_not-a-real-token-at-all-0123456789abcdef", "Basic xyz"]
)
def test_missing_or_wrong_token_is_a_json_401(tls_sandbox, path, auth):
    headers = {} if auth is None else {"Authorization": auth}
    answer = get(tls_sandbox, path, headers=headers)
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] in ("missing_token", "invalid_token", "invalid_auth_scheme")
    assert "bbk_not-a-real" not in answer.text


def test_only_get_is_served(tls_sandbox, two):
    a, _ = two
    from tests.portal_support import base_url, http

    answer = http().post(base_url(tls_sandbox) + "/v1/account", headers={
        "Authorization": f"Bearer {a.token}"}, timeout=30)  # fmt: skip
    assert answer.status_code == 405 and answer.json()["error"]["code"] == "method_not_allowed"


def test_page_and_assets_are_static_with_a_strict_policy(tls_sandbox):
    page = get(tls_sandbox, "/portal")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    for rule in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                 "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'"):  # fmt: skip
        assert rule in csp
    assert "unsafe" not in csp and "http" not in csp
    html = page.text
    # nothing inline: every script has a src, no style element or attribute, no handlers
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert "<style" not in html and " style=" not in html
    assert re.findall(r"\son[a-z]+=", html) == []
    for name, kind in (("portal.js", "text/javascript"), ("portal.css", "text/css")):
        asset = get(tls_sandbox, f"/portal/{name}")
        assert asset.status_code == 200 and asset.headers["Content-Type"].startswith(kind)
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", asset.text), name  # no CDN
    assert not re.search(r"https?://", html)
    assert "innerHTML" not in get(tls_sandbox, "/portal/portal.js").text
    slash = get(tls_sandbox, "/portal/", allow_redirects=False)
    assert slash.status_code == 308 and slash.headers["Location"] == "../portal"
    assert get(tls_sandbox, "/portal/other.js").status_code == 404


def test_portal_reads_are_not_usage_and_take_no_minute_slot(tls_sandbox):
    # Counters only: the log lines are checked in process (test_portal_reads.py), because a
    # mock_aws test in the same worker resets the sandbox's in-process moto (its bucket too).
    from tests.sandbox_support import usage_totals

    c = make_customer(tls_sandbox, requests_made=0, invoice=False, requests_per_minute=1)
    for _ in range(3):
        for path in ENDPOINTS:
            assert get(tls_sandbox, path, c.token).status_code == 200
    # The one request this minute allows is still there for a model call.
    assert call_model(tls_sandbox, c.token).status_code == 200
    totals = usage_totals(tls_sandbox, c.customer_id)
    assert totals["requests"] == 1 and totals["refused"] == 0


def test_a_suspended_customer_still_reads_its_account_but_calls_no_model(tls_sandbox):
    from bedrock_billing.services.customers import set_status

    c = make_customer(tls_sandbox, requests_made=0, invoice=False)
    set_status(tls_sandbox.settings(), c.customer_id, "suspended")  # before any lookup
    account = get(tls_sandbox, "/v1/account", c.token)
    assert account.status_code == 200 and account.json()["status"] == "suspended"
    assert get(tls_sandbox, "/v1/account/invoices", c.token).status_code == 200
    refused = call_model(tls_sandbox, c.token)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "customer_suspended"


def test_a_voided_invoice_says_so_and_its_revision_is_listed(tls_sandbox):
    from bedrock_billing.services.invoices import run_invoices, void_invoice
    from tests.portal_support import BOOK

    c = make_customer(tls_sandbox, requests_made=1)
    settings = tls_sandbox.settings()
    period = str(Period.of(tls_sandbox.clock()))
    void_invoice(settings, c.customer_id, period, reason="wrong plan")
    run_invoices(settings, period=period, customer_id=c.customer_id, finalize=True, force=True,
                 price_book=BOOK, allow_unpriced=True)  # fmt: skip
    listed = get(tls_sandbox, "/v1/account/invoices", c.token).json()["invoices"]
    assert [(i["id"], i["status"]) for i in listed] == [
        (c.invoice_id + "-R2", "issued"), (c.invoice_id, "void"),
    ]  # fmt: skip
    first = get(tls_sandbox, f"/v1/account/invoices/{c.invoice_id}", c.token).json()
    assert first["status"] == "void"
    second = get(tls_sandbox, f"/v1/account/invoices/{c.invoice_id}-R2", c.token).json()
    assert second["status"] == "issued" and second["revision"] == 2
