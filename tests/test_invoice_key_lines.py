"""Invoices list each key's usage where the plan asks for it (``lines_per_key = true``):
requests made through the proxy with three keys, a test key and a token from before keys,
then the month's draft (moto in process, the stub Bedrock, the fixed clock of 2025-03-15)."""

from __future__ import annotations

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.pricing import load_price_book
from bedrock_billing.services import customers as customer_svc
from bedrock_billing.services import keys as key_svc
from bedrock_billing.services.invoice_documents import render_html, render_markdown
from bedrock_billing.services.invoices import run_invoices
from bedrock_billing.settings import resolve_settings
from tests import proxy_support
from tests.proxy_support import HAIKU, claude_body, event, put_token, usage_items

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world

BOOK = """
currency = "USD"
default_plan = "plain"

[plans.plain]
charges = [{ type = "per_request", price = "0.01" }]

[plans.perkey]
lines_per_key = true
charges = [{ type = "per_request", price = "0.01" }]
"""


@pytest.fixture
def book(tmp_path):
    path = tmp_path / "book.toml"
    path.write_text(BOOK)
    return str(path)


def _draft(settings, cid, book) -> dict:
    run = run_invoices(settings, period="2025-03", customer_id=cid, price_book=book)
    [doc] = run.invoices
    return doc


def test_key_lines_add_up_to_the_invoices_usage_and_leave_test_keys_out(world, book):
    settings = resolve_settings(stage="test")
    created = customer_svc.create_customer(
        settings, name="Acme", email="ops@acme.example", plan="perkey", price_book=book
    )
    cid = created["customer_id"]
    ci = key_svc.create_key(settings, cid, name="ci")
    test_key = key_svc.create_key(settings, cid, name="sandbox", test=True)
    old_token = put_token(world.ddb, world.tables, cid)  # a token from before keys
    sent = [created["token"], ci["token"], ci["token"], test_key["token"], old_token]
    for token in sent:
        assert world.proxy.handle(event(claude_body(), token))["statusCode"] == 200
    doc = _draft(settings, cid, book)
    lines = {line["key_name"]: line for line in doc["key_lines"]}
    assert set(lines) == {"default", "ci", "(tokens without a key)"}  # no test key line
    assert [lines[n]["requests"] for n in ("default", "ci", "(tokens without a key)")] == [1, 2, 1]
    assert lines["ci"]["key_id"] == ci["key_id"]
    assert lines["(tokens without a key)"]["key_id"] is None
    # The lines add up to what the invoice bills: 4 requests (the test key's is not one).
    assert sum(line["requests"] for line in doc["key_lines"]) == 4
    assert doc["total"] == "0.04"
    day = usage_items(world.ddb, world.tables, cid)[f"DAY#2025-03-15#{HAIKU}"]
    for counter in ("input_tokens", "output_tokens"):
        assert sum(line[counter] for line in doc["key_lines"]) == day[counter] > 0
    markdown = render_markdown(doc)
    assert "## Usage per key" in markdown and "| ci | 2 |" in markdown
    assert "<h2>Usage per key</h2>" in render_html(doc)
    assert ci["token"] not in markdown + render_html(doc)


def test_a_plan_without_lines_per_key_has_none(world, book):
    settings = resolve_settings(stage="test")
    created = customer_svc.create_customer(settings, name="Zed", email="z@z.example",
                                           price_book=book)  # fmt: skip
    assert world.proxy.handle(event(claude_body(), created["token"]))["statusCode"] == 200
    doc = _draft(settings, created["customer_id"], book)
    assert "key_lines" not in doc and "Usage per key" not in render_markdown(doc)


def test_lines_per_key_must_be_a_boolean(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BOOK.replace("lines_per_key = true", 'lines_per_key = "yes"'))
    with pytest.raises(InvalidInput, match="lines_per_key"):
        load_price_book(path)
