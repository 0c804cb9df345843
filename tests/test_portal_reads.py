"""What each portal endpoint costs in DynamoDB calls (the figures docs/schema.md states), and
that it writes nothing, logs no usage and shows the customer none of the operator's numbers.
In process (moto), through the proxy's handler, with the token already in the auth cache."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedrock_billing.core.invoice_numbers import invoice_number, parse_invoice_number
from bedrock_billing.core.timeutil import Period
from bedrock_billing.proxy.account import customer_view
from bedrock_billing.stores.invoices import InvoiceStore
from tests import proxy_support
from tests.proxy_support import claude_body, event, put_customer, put_token, usage_items

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world


def _invoice(customer_id: str, period: str = "2025-02", revision: int = 1) -> dict:
    return {
        "customer_id": customer_id,
        "invoice_number": invoice_number(customer_id, Period.parse(period), revision),
        "period": period,
        "revision": revision,
        "status": "issued",
        "issued_at": "2025-03-02T00:00:00Z",
        "plan": "payg",
        "currency": "USD",
        "lines": [{"kind": "usage", "description": "Haiku input tokens", "metric": "input_tokens",
                   "quantity": 1000, "unit_price": "0.00000025", "amount": "0.00",
                   "exact_amount": "0.00025", "charge": "x"}],  # fmt: skip
        "subtotal": "1.00",
        "true_up": "0.00",
        "discounts": [],
        "discount_total": "0.00",
        "credits": [{"grant_id": "0123456789abcdef", "applied": "0.50", "available": "9.00",
                     "remaining": "8.50", "status": "usable"}],  # fmt: skip
        "credit_total": "0.50",
        "total": "0.50",
        "total_cents": 50,
        "price_book_hash": "abc123",
        "price_book": "/home/operator/book.toml",
        "unpriced": [{"model": "m", "metric": "requests", "quantity": 3}],
        "margin": {"revenue": "1.00", "cost": "0.40", "margin": "0.60", "models": []},
    }


def _get(world, path: str, token: str, query: dict | None = None) -> dict:
    ev = event(None, token, path=path, method="GET")
    if query:
        ev["queryStringParameters"] = query
    return world.proxy.handle(ev)


def test_each_endpoint_makes_the_reads_docs_schema_states_and_no_write(world):
    cid = put_customer(world.ddb, world.tables, daily_request_limit=10)
    other = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid)
    assert world.proxy.handle(event(claude_body(), token))["statusCode"] == 200
    store = InvoiceStore(world.ddb, world.tables.invoices)
    store.put_invoice(_invoice(cid))
    store.put_invoice(_invoice(other))
    before = usage_items(world.ddb, world.tables, cid)
    world.logs.clear()
    expected = {
        "/prod/v1/account": ["GetItem", "GetItem"],
        "/prod/v1/account/usage": ["Query"],
        "/prod/v1/account/invoices": ["Query", "Query"],
        f"/prod/v1/account/invoices/{invoice_number(cid, Period(2025, 2))}": ["GetItem", "GetItem"],
        # another customer's number: refused before any read
        f"/prod/v1/account/invoices/{invoice_number(other, Period(2025, 2))}": [],
        "/prod/portal": [],
        "/prod/portal/portal.js": [],
    }
    for path, calls in expected.items():
        world.calls.clear()
        answer = _get(world, path, token)
        assert world.calls == calls, path
        assert answer["statusCode"] == (404 if calls == [] and "invoices" in path else 200), path
    assert usage_items(world.ddb, world.tables, cid) == before  # nothing metered
    assert [line["status"] for line in world.logs] == [404]  # answers are not usage lines
    assert world.logs[0]["event_type"] == "proxy_refused" and world.logs[0]["api"] is None


def test_a_bad_period_costs_no_read(world):
    cid = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid)
    assert _get(world, "/v1/account/usage", token)["statusCode"] == 200  # warms the cache
    world.calls.clear()
    answer = _get(world, "/v1/account/usage", token, {"period": "2025-00"})
    assert answer["statusCode"] == 400 and world.calls == []
    assert json.loads(answer["body"])["error"]["code"] == "invalid_period"


def test_account_reads_limits_fresh_and_usage_counts_todays_admissions(world):
    cid = put_customer(world.ddb, world.tables, daily_request_limit=3, monthly_budget="1.00")
    token = put_token(world.ddb, world.tables, cid)
    for _ in range(2):
        assert world.proxy.handle(event(claude_body(), token))["statusCode"] == 200
    body = json.loads(_get(world, "/v1/account", token)["body"])
    assert body["month_to_date"]["requests_today"] == 2
    assert body["remaining"]["requests_today"] == 1
    assert body["month_to_date"]["tokens"] == 2 * (12 + 34)  # the stub's counts
    usage = json.loads(_get(world, "/v1/account/usage", token)["body"])
    assert usage["totals"]["total_tokens"] == body["month_to_date"]["tokens"]
    assert usage["totals"]["requests"] == 2 and len(usage["daily"]) == 31  # March
    # A limit changed by the operator shows at once (the account reads the item, not the cache)
    world.ddb.update_item(
        TableName=world.tables.customers,
        Key={"customer_id": {"S": cid}},
        UpdateExpression="SET daily_request_limit = :l",
        ExpressionAttributeValues={":l": {"N": "9"}},
    )
    again = json.loads(_get(world, "/v1/account", token)["body"])
    assert again["limits"]["daily_request_limit"] == 9 and again["remaining"]["requests_today"] == 7


def test_items_edited_by_hand_never_give_a_5xx(world):
    cid = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid)
    key = {"customer_id": {"S": cid}}
    march = invoice_number(cid, Period(2025, 3))
    for item in (  # fmt: skip
        {**key, "sk": {"S": "METER#2025-03"}, "tokens": {"S": "many"}, "d15": {"N": "2"}},
        {**key, "sk": {"S": "DAY#2025-03-0x#m"}, "requests": {"N": "1"}},
        {**key, "sk": {"S": "DAY#2025-03-14#m"}, "requests": {"S": "1"},
         "input_tokens": {"N": "5"}},
    ):
        world.ddb.put_item(TableName=world.tables.usage, Item=item)
    for period, document in (("2025-03", "[]"), ("2025-02", "not json")):
        world.ddb.put_item(TableName=world.tables.invoices, Item={
            **key, "sk": {"S": f"INVOICE#{period}"}, "document": {"S": document},
            "invoice_number": {"S": march}, "total_cents": {"S": "12"}})  # fmt: skip
    account = json.loads(_get(world, "/v1/account", token)["body"])
    assert account["month_to_date"] == {**account["month_to_date"], "tokens": 0,
                                        "requests_today": 2}  # fmt: skip
    usage = json.loads(_get(world, "/v1/account/usage", token)["body"])
    assert usage["totals"]["input_tokens"] == 5 and usage["totals"]["requests"] == 0
    listed = json.loads(_get(world, "/v1/account/invoices", token)["body"])["invoices"]
    assert [i["total"] for i in listed] == [None, None]
    assert _get(world, f"/v1/account/invoices/{march}", token)["statusCode"] == 404


def test_a_dashboard_on_an_allowed_origin_may_read_with_cors(world):
    proxy = world.make(cors_origins=("https://dash.example",))
    cid = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid)
    origin = {"Origin": "https://dash.example"}
    preflight = proxy.handle(event(None, None, path="/v1/account", method="OPTIONS",
                                   headers=origin))  # fmt: skip
    assert preflight["statusCode"] == 204
    assert "GET" in preflight["headers"]["Access-Control-Allow-Methods"]
    answer = proxy.handle(event(None, token, path="/v1/account", method="GET", headers=origin))
    assert answer["statusCode"] == 200
    assert answer["headers"]["Access-Control-Allow-Origin"] == "https://dash.example"


def test_the_customers_copy_of_an_invoice_leaves_out_the_operators_numbers():
    view = customer_view(_invoice("6f1c1a52-1111-4222-8333-944455556666"))
    text = json.dumps(view)
    for secret in ("margin", "price_book", "unpriced", "exact_amount", "/home/operator", "cost"):
        assert secret not in text
    assert view["lines"][0]["unit_price"] == "0.00000025"
    assert view["credits"] == [{"grant": "01234567", "applied": "0.50"}]
    assert view["id"] == view["invoice_number"] and view["total"] == "0.50"


@given(
    st.uuids().map(str),
    st.integers(2000, 9999),
    st.integers(1, 12),
    st.integers(1, 9999),
)
def test_invoice_numbers_read_back_to_their_period_and_revision(cid, year, month, revision):
    number = invoice_number(cid, Period(year, month), revision)
    ref = parse_invoice_number(number)
    assert ref is not None
    assert (ref.period, ref.revision) == (Period(year, month), revision)
    assert ref.customer_part == cid.replace("-", "")[:12].upper()


@pytest.mark.parametrize("text", [
    "", "BB-202613-0123456789AB", "BB-202600-0123456789AB", "BB-202601-0123456789ab",
    "BB-202601-0123456789AB-R1", "BB-202601-0123456789AB-R0", "BB-202601-0123456789AB-R02",
    "BB-202601-0123456789A", "BB-202601-0123456789ABC", " BB-202601-0123456789AB",
    "BB-202601-0123456789AB\n", "bb-202601-0123456789AB", "BB-2026-01-0123456789AB",
])  # fmt: skip
def test_anything_else_is_not_an_invoice_number(text):
    assert parse_invoice_number(text) is None
