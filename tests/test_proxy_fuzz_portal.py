"""Property, for the customer portal's routes (the page, its assets, /v1/account and its
usage and invoices): whatever path, query, method or headers arrive, the answer is a 2xx,
a redirect or a JSON 4xx: never a 5xx, never a token, never another customer's data."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bedrock_billing.core.invoice_numbers import invoice_number
from bedrock_billing.core.timeutil import Period
from bedrock_billing.stores.invoices import InvoiceStore
from tests import proxy_support
from tests.proxy_support import claude_body, event, put_customer, put_token
from tests.test_portal_reads import _invoice
from tests.test_proxy_fuzz import json_values

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world
TOKEN_A = "bbk_fuzz-portal-a-0123456789abcdefghijklmnopqrstuvwxyz"
TOKEN_B = "bbk_fuzz-portal-b-0123456789abcdefghijklmnopqrstuvwxyz"
FUZZ = settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def two(world):
    """Customers A and B, each with a token, usage and an invoice for 2025-02 and 2025-03."""
    ids = {}
    for name, token in (("a", TOKEN_A), ("b", TOKEN_B)):
        cid = put_customer(world.ddb, world.tables, daily_request_limit=1000)
        put_token(world.ddb, world.tables, cid, token=token)
        assert world.proxy.handle(event(claude_body(), token))["statusCode"] == 200
        store = InvoiceStore(world.ddb, world.tables.invoices)
        for period in ("2025-02", "2025-03"):
            store.put_invoice(_invoice(cid, period))
        ids[name] = cid
    return ids


def _numbers(cid: str) -> list[str]:
    return [invoice_number(cid, Period(2025, m), r) for m in (2, 3) for r in (1, 2)]


@st.composite
def portal_events(draw, ids):
    prefix = draw(st.sampled_from(["", "/prod", "/a/b", "/v1"]))
    invoice = draw(
        st.sampled_from(_numbers(ids["a"]) + _numbers(ids["b"]) + [TOKEN_A, "..", "%2F"])
        | st.text(max_size=30).filter(lambda t: "/" not in t and "?" not in t and "#" not in t)
    )
    suffix = draw(
        st.sampled_from(
            ["/v1/account", "/v1/account/", "/v1/account/usage", "/v1/account/invoices",
             "/v1/account/invoices/", f"/v1/account/invoices/{invoice}", "/portal", "/portal/",
             "/portal/portal.js", "/portal/portal.css", "/portal/index.html", "/v1/account/x",
             f"/v1/account/usage/{invoice}"]  # fmt: skip
        )
    )
    method = draw(st.sampled_from(["GET"] * 8 + ["POST", "HEAD", "DELETE", "OPTIONS"]))
    token = draw(st.sampled_from([TOKEN_A, TOKEN_A, TOKEN_B, None, "junk", TOKEN_A + "x"]))
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    headers.update(
        draw(st.dictionaries(st.sampled_from(["Origin", "X-Customer-Id", "Cookie", "Accept"]),
                             st.sampled_from([ids["b"], ids["a"], TOKEN_B, "x", ""]),
                             max_size=2))  # fmt: skip
    )
    period = st.sampled_from(["2025-03", "2025-02", "2025-13", "", "2025-3", ids["b"]])
    query = draw(
        st.none()
        | st.dictionaries(st.sampled_from(["period", "customer_id", "id"]),
                          period | st.text(max_size=10), max_size=2)  # fmt: skip
        | json_values
    )
    version = draw(st.sampled_from(["1.0", "2.0"]))
    if version == "2.0":
        ev = {
            "version": "2.0",
            "rawPath": prefix + suffix,
            "headers": {k.lower(): v for k, v in headers.items()},
            "queryStringParameters": query,
            "requestContext": {"http": {"method": method}, "requestId": "r-p2"},
            "body": None,
            "isBase64Encoded": False,
        }
    else:
        ev = {
            "httpMethod": method,
            "path": prefix + suffix,
            "headers": headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": (
                {k: [v, v] for k, v in query.items() if isinstance(v, str)}
                if isinstance(query, dict) and draw(st.booleans())
                else None
            ),
            "requestContext": {"requestId": "r-p1"},
            "body": None,
            "isBase64Encoded": False,
        }
    return ev, token


def test_portal_routes_never_5xx_echo_a_token_or_show_another_customer(world, two):
    seen = {"ok": 0, "a_data": 0, "b_data": 0, "total": 0}

    @FUZZ
    @given(st.data())
    def check(data):
        ev, token = data.draw(portal_events(two))
        world.logs.clear()
        response = world.proxy.handle(ev)
        status = response["statusCode"]
        assert 200 <= status < 500, (ev, response)
        text = json.dumps(response)
        assert TOKEN_A not in text and TOKEN_B not in text, (ev, response)
        assert TOKEN_A not in json.dumps(world.logs) and TOKEN_B not in json.dumps(world.logs)
        assert "Traceback" not in text
        body = response["body"]
        if status >= 400:  # a JSON refusal in the portal's (or the route's) shape
            assert json.loads(body)["error"]["code"]
        # The caller's own data only: A's token never shows B, nor B's token A.
        other = {TOKEN_A: "b", TOKEN_B: "a"}.get(token)
        if other:
            assert two[other] not in body, (ev, body)
            assert not any(n in body for n in _numbers(two[other])), (ev, body)
        if status == 200 and body.startswith("{"):
            seen["ok"] += 1
            owner = json.loads(body).get("customer_id")
            if owner:
                assert owner == two[{TOKEN_A: "a", TOKEN_B: "b"}[token]]
                seen["a_data" if owner == two["a"] else "b_data"] += 1
        seen["total"] += 1

    check()
    assert seen["a_data"] > 30 and seen["b_data"] > 5, seen  # many cases reach real data
