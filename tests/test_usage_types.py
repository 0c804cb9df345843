"""The pure parts of billing by usage type: price-book variants and their fallbacks, CUR
usage types classified, pricing units, the margin report's allocation to the cent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedrock_billing.core.billedusage import classify_usage_type, model_words, units_per_amount
from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.models import inference_scope
from bedrock_billing.core.pricing import parse_price_book
from bedrock_billing.core.pricing.billcheck import match_model, model_index, usage_type_name
from bedrock_billing.core.pricing.margin_report import UNATTRIBUTED, margin_rows
from bedrock_billing.core.pricing.usagetypes import VARIANT_LABELS, cost_price, parse_label

SONNET4 = "anthropic.claude-sonnet-4-20250514-v1:0"
BOOK = parse_price_book(f"""
[[costs."{SONNET4}"]]
input = "0.000003"
cache_write = "0.00000375"
[costs."{SONNET4}".variants.priority]
input = "0.00000525"
[costs."{SONNET4}".variants.global]
input = "0.0000027"
[[costs."{SONNET4}"]]
from = 2026-06-10
input = "0.0000029"
cache_write_1h = "0.000006"
""")
DAY, LATER = date(2026, 6, 1), date(2026, 6, 20)


@pytest.mark.parametrize(
    ("label", "day", "token", "price"),
    [
        ("", DAY, "input", "0.000003"),
        ("priority", DAY, "input", "0.00000525"),
        ("global", DAY, "input", "0.0000027"),
        ("geo", DAY, "input", "0.000003"),  # a scope without a variant: on-demand
        ("geo-priority", DAY, "input", "0.00000525"),  # the tier's variant
        ("flex", DAY, "input", None),  # a tier without a variant: unpriced
        ("batch", DAY, "input", None),
        ("", DAY, "cache_write_1h", None),  # never the 5-minute price
        ("", LATER, "input", "0.0000029"),  # the dated version in force
        ("priority", LATER, "input", None),  # the later version has no variants
        ("", LATER, "cache_write_1h", "0.000006"),
    ],
)
def test_cost_prices_by_usage_type_and_day(label, day, token, price):
    found = cost_price(BOOK, SONNET4, day, label, token)
    assert found.price == (None if price is None else Decimal(price))
    assert found.entry.startswith(f"costs.'{SONNET4}'")


def test_an_unknown_variant_is_refused_with_the_known_ones():
    text = f'[costs."{SONNET4}"]\ninput = "1"\n[costs."{SONNET4}".variants.premium]\ninput = "2"\n'
    with pytest.raises(InvalidInput, match="unknown usage type 'premium'.*priority"):
        parse_price_book(text)
    with pytest.raises(InvalidInput, match="a price"):
        parse_price_book(f'[costs."{SONNET4}"]\ncache_write_1h = 0.1\n')


def test_labels_round_trip():
    for label in VARIANT_LABELS:
        tier, scope, batch = parse_label(label)
        parts = [p for p in (scope if scope != "in_region" else "",
                             tier if tier != "default" else "", "batch" if batch else "") if p]
        assert "-".join(parts) == label
    assert "flex-batch" not in VARIANT_LABELS and "global-batch" in VARIANT_LABELS


@pytest.mark.parametrize(
    ("usage_type", "expected"),
    [
        ("USE1-Claude3Haiku-input-tokens", ("input", "default", "in_region", False)),
        ("USW2-NovaPro-output-tokens", ("output", "default", "in_region", False)),
        ("USE1-ClaudeSonnet4-cache-read-input-token-count", ("cache_read", "default",
                                                             "in_region", False)),
        ("USE1-ClaudeSonnet4-global-cache-write-input-token-count-1h",
         ("cache_write_1h", "default", "global", False)),
        ("USE1-ClaudeSonnet4-priority-input-tokens", ("input", "priority", "in_region", False)),
        ("USE1-Claude3Haiku-batch-input-tokens", ("input", "default", "in_region", True)),
        ("USE1-MP:USE1_InputTokenCount-Units", ("input", "default", "in_region", False)),
        ("USE1-MP:USE1_CacheWriteInputTokenCount-Units", ("cache_write", "default",
                                                          "in_region", False)),
    ],
)  # fmt: skip
def test_cur_usage_types_are_classified(usage_type, expected):
    found = classify_usage_type(usage_type)
    assert (found.token_type, found.tier, found.scope, found.batch) == expected


def test_usage_types_that_bill_no_tokens_are_not_classified():
    assert classify_usage_type("USE1-ProvisionedThroughput-ModelUnits") is None


@pytest.mark.parametrize(("unit", "tokens"), [("1K tokens", 1000), ("1M Tokens", 1_000_000),
                                              ("1,000,000 tokens", 1_000_000), ("Units", 1)])
def test_pricing_units(unit, tokens):  # fmt: skip
    assert units_per_amount(unit) == tokens


def test_a_line_item_finds_its_model_by_product_name_or_usage_type():
    index = model_index(parse_price_book(""))
    haiku = "anthropic.claude-3-haiku-20240307-v1:0"
    assert match_model(index, "Claude 3 Haiku (Amazon Bedrock Edition)", "x") == haiku
    assert match_model(index, "", usage_type_name("us-east-1", "Claude 3 Haiku", "", "input"))\
        == haiku
    assert match_model(index, "Some Other Model", "USE1-Unknown-input-tokens") is None
    assert model_words("Nova Pro (Amazon Bedrock Edition)") == "novapro"


def test_inference_scope_of_model_ids():
    assert inference_scope("eu." + SONNET4) == "geo"
    assert inference_scope("global." + SONNET4) == "global"
    assert inference_scope(SONNET4) == "in_region"
    assert inference_scope(None) == "in_region"


def invoice(cid, models, credit="0.00"):
    revenue = sum(Decimal(m["revenue"]) for m in models)
    return {"customer_id": cid, "customer_name": cid, "invoice_number": f"BB-{cid}",
            "total": str(revenue - Decimal(credit)), "credit_total": credit,
            "margin": {"models": models}}  # fmt: skip


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1,
                max_size=6), st.integers(0, 10**7))  # fmt: skip
def test_margin_rows_add_up_to_the_invoices_and_to_the_bill(pairs, bill_cents):
    docs = [
        invoice(f"c{i}", [{"model": "m", "revenue": str(Decimal(r) / 100),
                           "cost": str(Decimal(c) / 100)},
                          {"model": None, "revenue": "1.00", "cost": "0.00"}], credit="0.50")
        for i, (r, c) in enumerate(pairs)
    ]  # fmt: skip
    rows, totals = margin_rows(docs, {"m": Decimal(bill_cents) / 100 + Decimal("0.004")})
    assert Decimal(totals["invoiced"]) == sum(Decimal(d["total"]) for d in docs)
    assert sum(r.revenue for r in rows) == Decimal(totals["revenue"])
    assert sum(r.cost for r in rows) == Decimal(bill_cents) / 100  # rounded half-up, then shared
    assert [r.margin for r in rows] == sorted((r.margin for r in rows), reverse=True)


def test_cur_cost_of_a_model_no_customer_used_is_unattributed():
    docs = [invoice("a", [{"model": "m", "revenue": "2.00", "cost": "1.00"}])]
    rows, totals = margin_rows(docs, {"m": Decimal("0.80"), "other": Decimal("0.30")})
    (stray,) = [r for r in rows if r.customer_name == UNATTRIBUTED]
    assert stray.cost == Decimal("0.30") and totals["aws_cost"] == "1.10"
    assert totals["margin_percent"] == "45.0"
