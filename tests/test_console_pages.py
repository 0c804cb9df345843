"""The console's actions that the browser test does not click, through ``ConsoleApp`` over
in-process moto: each lands in the same service state as its CLI command."""

from __future__ import annotations

from datetime import date

import pytest

pytest.importorskip("jinja2")

from bedrock_billing.core.schema import day_key  # noqa: E402
from bedrock_billing.core.timeutil import Period  # noqa: E402
from bedrock_billing.services.customers import create_customer, show_customer  # noqa: E402
from bedrock_billing.services.invoices import list_credits  # noqa: E402
from bedrock_billing.services.overview import customer_invoices  # noqa: E402

from .console_support import console_app, get, login, post  # noqa: E402, F401

SONNET = "anthropic.claude-3-sonnet-20240229-v1:0"


@pytest.fixture
def session(console_app):  # noqa: F811 - the fixture imported above
    cookie, csrf = login(console_app)
    made = create_customer(console_app.settings, name="Acme", email="ops@acme.example")
    return console_app, cookie, csrf, made["customer_id"]


def test_reactivate_rotate_and_revoke_go_through_the_services(session):
    app, cookie, csrf, cid = session
    for action in ("suspend", "reactivate"):
        answer = post(app, f"/customers/{cid}/{action}", {"csrf": csrf}, Cookie=cookie)
        assert answer.status == 303 and answer.headers["Location"].endswith(f"done={action}")
    assert show_customer(app.settings, cid)["status"] == "active"
    rotated = post(app, f"/customers/{cid}/rotate", {"csrf": csrf, "grace_period": "2h"},
                   Cookie=cookie)  # fmt: skip
    assert rotated.status == 200 and b"shown once" in rotated.body
    states = {t["role"]: t["state"] for t in show_customer(app.settings, cid)["tokens"]}
    assert states == {"current": "active", "previous": "grace"}
    assert post(app, f"/customers/{cid}/revoke-previous", {"csrf": csrf}, Cookie=cookie)\
        .status == 303  # fmt: skip
    assert [t["role"] for t in show_customer(app.settings, cid)["tokens"]] == ["current"]
    assert post(app, f"/customers/{cid}/revoke", {"csrf": csrf}, Cookie=cookie).status == 303
    assert show_customer(app.settings, cid)["tokens"] == []
    page = get(app, f"/customers/{cid}", cookie).body.decode()
    assert "No token: rotate to issue one." in page
    again = post(app, f"/customers/{cid}/revoke", {"csrf": csrf}, Cookie=cookie)
    assert again.status == 409 and "no token to revoke" in again.body.decode()


def test_limits_and_credits_are_validated_by_the_services(session):
    app, cookie, csrf, cid = session
    fields = {"csrf": csrf, "daily_request_limit": "100", "monthly_token_limit": "",
              "requests_per_minute": "", "monthly_budget": "12.5",
              "allowed_models": ""}  # fmt: skip
    assert post(app, f"/customers/{cid}/limits", fields, Cookie=cookie).status == 303
    limits = show_customer(app.settings, cid)["limits"]
    assert limits["daily_request_limit"] == 100 and limits["monthly_budget"] == "12.50"
    bad = post(app, f"/customers/{cid}/limits", {**fields, "monthly_budget": "1.234"},
               Cookie=cookie)  # fmt: skip
    assert bad.status == 400 and "invalid monthly budget" in bad.body.decode()
    assert 'value="1.234"' in bad.body.decode()  # the form keeps what was typed
    assert show_customer(app.settings, cid)["limits"]["monthly_budget"] == "12.50"
    assert post(app, f"/customers/{cid}/credits", {"csrf": csrf, "amount": "25.00"},
                Cookie=cookie).status == 303  # fmt: skip
    assert list_credits(app.settings, cid)["usable_balance"] == "25.00"
    refused = post(app, f"/customers/{cid}/credits", {"csrf": csrf, "amount": "-1"},
                   Cookie=cookie)  # fmt: skip
    assert refused.status == 400


def test_finalize_keeps_the_settling_window_and_void_needs_a_reason(session):
    app, cookie, csrf, cid = session
    period = str(Period.of(date.today()))
    app.settings.client("dynamodb").update_item(
        TableName=app.settings.tables.usage,
        Key={"customer_id": {"S": cid}, "sk": {"S": day_key(date.today(), SONNET)}},
        UpdateExpression="ADD requests :r, input_tokens :i, output_tokens :o",
        ExpressionAttributeValues={":r": {"N": "2"}, ":i": {"N": "1000000"}, ":o": {"N": "0"}},
    )
    early = post(app, f"/invoices/{cid}/{period}/finalize", {"csrf": csrf}, Cookie=cookie)
    assert early.status == 409 and "settles at" in early.body.decode()
    assert customer_invoices(app.settings, cid)["invoices"] == []
    issued = post(app, f"/invoices/{cid}/{period}/finalize", {"csrf": csrf, "force": "yes"},
                  Cookie=cookie)  # fmt: skip
    assert issued.status == 303 and issued.headers["Location"].endswith("done=finalize")
    document = get(app, f"/invoices/{cid}/{period}", cookie)
    assert document.status == 200 and b"DRAFT" not in document.body and b"3.00" in document.body
    assert "script-src" not in document.headers["Content-Security-Policy"]
    no_reason = post(app, f"/invoices/{cid}/{period}/void", {"csrf": csrf}, Cookie=cookie)
    assert no_reason.status == 400
    voided = post(app, f"/invoices/{cid}/{period}/void", {"csrf": csrf, "reason": "test"},
                  Cookie=cookie)  # fmt: skip
    assert voided.status == 303
    assert customer_invoices(app.settings, cid)["invoices"][0]["status"] == "void"
    listing = get(app, f"/invoices?period={period}", cookie).body.decode()
    assert "void" in listing and "Finalize…" in listing  # a revision can be issued


def test_every_page_renders(session):
    app, cookie, _, cid = session
    for path in ("/customers", "/customers?sort=email&dir=desc&q=acme&status=active",
                 "/customers/new", f"/customers/{cid}", f"/customers/{cid}?period=2026-01",
                 f"/customers/{cid}/confirm/rotate", "/usage", "/usage?reconcile=1",
                 "/invoices", f"/invoices/{cid}/2026-01/confirm/void",
                 "/static/console.js"):  # fmt: skip
        answer = get(app, path, cookie)
        assert answer.status == 200, (path, answer.body[:300])
    no_log = get(app, "/usage?reconcile=1", cookie).body.decode()  # moto here has no log bucket
    assert "Error: cannot read s3://" in no_log and "Per model" in no_log
    assert get(app, "/customers?sort=token_hash", cookie).status == 400
    assert get(app, "/customers?page=x", cookie).status == 400
    assert get(app, "/nowhere", cookie).status == 404
