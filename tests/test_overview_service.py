"""services/overview.py: the read-only views the console renders, over in-process moto and a
fixed clock (mid-November 2026)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.schema import day_key
from bedrock_billing.services import overview
from bedrock_billing.services.customers import create_customer, init_tables, set_status
from bedrock_billing.services.invoices import run_invoices, void_invoice

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
SONNET = "anthropic.claude-3-sonnet-20240229-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


def clock():
    return NOW


@pytest.fixture
def settings(settings_for):
    s = settings_for(stage="overview")
    init_tables(s)
    return s


def add_usage(settings, cid, day: date, model: str, requests: int, tokens_in=10, tokens_out=20):
    settings.client("dynamodb").update_item(
        TableName=settings.tables.usage,
        Key={"customer_id": {"S": cid}, "sk": {"S": day_key(day, model)}},
        UpdateExpression="ADD requests :r, input_tokens :i, output_tokens :o",
        ExpressionAttributeValues={":r": {"N": str(requests)}, ":i": {"N": str(tokens_in)},
                                   ":o": {"N": str(tokens_out)}},  # fmt: skip
    )


def make(settings, name, email, plan=None):
    return create_customer(settings, name=name, email=email, plan=plan, clock=clock)["customer_id"]


def test_customer_table_searches_filters_sorts_and_pages_the_whole_table(settings):
    ids = {}
    for n, name in enumerate(["Delta", "alpha", "Charlie", "Echo", "bravo", "Foxtrot", "Golf"]):
        ids[name] = make(settings, name, f"{name.lower()}@corp{n % 2}.example",
                         plan="list" if n % 3 == 0 else None)  # fmt: skip
    set_status(settings, ids["Echo"], "suspended", clock=clock)
    add_usage(settings, ids["alpha"], date(2026, 11, 3), SONNET, 5, 100, 200)
    add_usage(settings, ids["alpha"], date(2026, 10, 30), SONNET, 99)  # last month: not counted

    first = overview.customer_table(settings, per_page=3, clock=clock)
    assert (first["total"], first["pages"], first["count"]) == (7, 3, 3)
    assert [c["name"] for c in first["customers"]] == ["alpha", "bravo", "Charlie"]
    alpha = first["customers"][0]["month_to_date"]
    assert alpha["requests"] == 5 and alpha["total_tokens"] == 300
    assert alpha["spend"] == "0.00" and alpha["currency"] == "USD"
    last = overview.customer_table(settings, per_page=3, page=3, clock=clock)
    assert [c["name"] for c in last["customers"]] == ["Golf"]

    by_email = overview.customer_table(settings, search="CORP1", clock=clock)
    assert {c["name"] for c in by_email["customers"]} == {"alpha", "Echo", "Foxtrot"}
    by_id = overview.customer_table(settings, search=ids["Golf"][:8], clock=clock)
    assert [c["name"] for c in by_id["customers"]] == ["Golf"]
    suspended = overview.customer_table(settings, status="suspended", clock=clock)
    assert [c["name"] for c in suspended["customers"]] == ["Echo"]
    on_list = overview.customer_table(settings, plan="list", clock=clock)
    assert [c["name"] for c in on_list["customers"]] == ["Delta", "Echo", "Golf"]
    assert on_list["plans"] == ["list"]
    backwards = overview.customer_table(settings, sort="name", descending=True, clock=clock)
    assert [c["name"] for c in backwards["customers"]][:2] == ["Golf", "Foxtrot"]


@pytest.mark.parametrize("bad", [{"sort": "token_hash"}, {"page": 0}, {"per_page": 1000},
                                 {"status": "deleted"}])  # fmt: skip
def test_customer_table_refuses_bad_parameters(settings, bad):
    with pytest.raises(InvalidInput):
        overview.customer_table(settings, clock=clock, **bad)


def test_customer_usage_stacks_days_by_model_against_the_previous_period(settings):
    cid = make(settings, "Acme", "ops@acme.example")
    add_usage(settings, cid, date(2026, 11, 2), SONNET, 3)
    add_usage(settings, cid, date(2026, 11, 2), HAIKU, 2)
    add_usage(settings, cid, date(2026, 11, 14), HAIKU, 1)
    add_usage(settings, cid, date(2026, 10, 31), SONNET, 7)
    data = overview.customer_usage(settings, cid, clock=clock)
    assert (data["period"], data["previous_period"]) == ("2026-11", "2026-10")
    current, previous = data["current"], data["previous"]
    assert len(current["days"]) == 15 and len(previous["days"]) == 31  # to today; whole month
    assert current["requests_by_model"][HAIKU][1] == 2
    assert current["requests_by_model"][SONNET][1] == 3
    assert current["requests_by_model"][HAIKU][13] == 1
    assert current["totals"]["requests"] == 6 and previous["totals"]["requests"] == 7
    assert previous["requests_by_model"] == {SONNET: [0] * 30 + [7]}
    assert current["tokens_by_model"][HAIKU] == 60


def test_usage_overview_ranks_customers_and_totals_models(settings):
    big, small, idle = (make(settings, n, f"{n}@x.example") for n in ("big", "small", "idle"))
    add_usage(settings, big, date(2026, 11, 5), SONNET, 9)
    add_usage(settings, small, date(2026, 11, 6), HAIKU, 2)
    add_usage(settings, small, date(2026, 11, 6), SONNET, 1)
    data = overview.usage_overview(settings, clock=clock)
    assert [c["customer_id"] for c in data["top_customers"]] == [big, small]  # idle left out
    assert {m["model"]: m["requests"] for m in data["models"]} == {SONNET: 10, HAIKU: 2}
    assert data["totals"]["requests"] == 12
    assert sum(sum(v) for v in data["chart"]["requests_by_model"].values()) == 12
    with pytest.raises(InvalidInput):
        overview.usage_overview(settings, period="2027-01", clock=clock)


def test_period_invoices_show_drafts_then_issued_then_void(settings):
    cid = make(settings, "Acme", "ops@acme.example")
    add_usage(settings, cid, date(2026, 10, 4), SONNET, 3, 1_000_000, 0)
    drafts = overview.period_invoices(settings, period="2026-10", clock=clock)
    assert [(r["status"], r["total"]) for r in drafts["invoices"]] == [("draft", "3.00")]
    assert drafts["settles"] == "2026-11-02T00:00:00Z"
    run_invoices(settings, period="2026-10", customer_id=cid, finalize=True, clock=clock)
    issued = overview.period_invoices(settings, period="2026-10", clock=clock)
    assert issued["invoices"][0]["status"] == "issued" and issued["issued_total"] == "3.00"
    void_invoice(settings, cid, "2026-10", reason="wrong plan", clock=clock)
    voided = overview.period_invoices(settings, period="2026-10", clock=clock)
    assert voided["invoices"][0]["status"] == "void" and voided["issued_total"] == "0.00"
    listed = overview.customer_invoices(settings, cid)
    assert [(i["period"], i["status"]) for i in listed["invoices"]] == [("2026-10", "void")]
    doc = overview.issued_invoice(settings, cid, "2026-10")
    assert doc["status"] == "issued" and doc["total"] == "3.00"
    assert overview.issued_invoice(settings, cid, "2026-09") is None
