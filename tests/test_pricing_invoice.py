"""Rating a period: every plan type, the minimum, discounts, credits, overrides, margins."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.pricing import (
    CreditGrant,
    CustomerOverrides,
    default_price_book,
    rate_period,
)
from tests.pricing_helpers import HAIKU, NOVA_PRO, SONNET4, amounts, book, row

JUNE = "2025-06"

PLANS = book(
    f"""
default_plan = "per_request"

[plans.per_request]
charges = [{{type = "per_request", price = "0.002"}}]

[plans.markup]
charges = [{{type = "per_token", markup = "20"}}]

[plans.own]
[[plans.own.charges]]
type = "per_token"
models = ["{HAIKU}"]
prices = {{ "{HAIKU}" = {{ input = "0.000001", output = "0.000004" }} }}

[plans.graduated]
[[plans.graduated.charges]]
type = "graduated"
metric = "requests"
tiers = [
  {{ up_to = 1000, price = "0" }},
  {{ up_to = 10000, price = "0.01", flat_fee = "5" }},
  {{ price = "0.005" }},
]

[plans.volume]
[[plans.volume.charges]]
type = "volume"
metric = "requests"
tiers = [
  {{ up_to = 1000, price = "0" }},
  {{ up_to = 10000, price = "0.01", flat_fee = "5" }},
  {{ price = "0.005" }},
]

[[plans.package.charges]]
type = "package"
metric = "tokens"
size = 1000000
price = "1.50"
included = 500000

[plans.subscription]
base_fee = "49.00"
[[plans.subscription.charges]]
type = "per_unit"
name = "requests"
metric = "requests"
price = "0.004"
included = 10000

[plans.committed]
minimum = "100.00"
charges = [{{type = "per_token"}}]

[plans.discounted]
charges = [{{type = "per_request", price = "1"}}]
discounts = [
  {{type = "percent", percent = "10", name = "ten"}},
  {{type = "fixed", amount = "10.00", name = "welcome"}},
  {{type = "percent", percent = "5", name = "five"}},
]

[plans.combined]
base_fee = "20.00"
minimum = "50.00"
[[plans.combined.charges]]
type = "per_token"
markup = "10"
[[plans.combined.charges]]
type = "volume"
name = "request tiers"
metric = "requests"
model = "*"
tiers = [{{ up_to = 100, price = "0.01" }}, {{ price = "0.005" }}]
"""
)


def rate(plan, rows, **kw):
    return rate_period(PLANS, JUNE, rows, plan=plan, **kw)


def test_per_request():
    draft = rate("per_request", [row(requests=12000), row("2025-06-02", requests=345)])
    assert draft.total == Decimal("24.69")
    assert draft.plan == "per_request"
    assert draft.unpriced == ()  # tokens are not a metric of this plan


def test_default_plan_applies_without_a_plan_name():
    assert rate_period(PLANS, JUNE, [row(requests=10)]).plan == "per_request"


def test_per_token_with_markup_rounds_each_line_half_up():
    draft = rate("markup", [row(inp=1_234_567, out=345_678)])
    lines = draft.to_dict()["lines"]
    assert [ln["unit_price"] for ln in lines] == ["0.0000003", "0.0000015"]
    assert [ln["exact_amount"] for ln in lines] == ["0.3703701", "0.518517"]
    assert amounts(draft) == ["0.37", "0.52"]
    assert draft.total == Decimal("0.89")


def test_per_token_own_prices_and_unpriced_models():
    draft = rate("own", [row(inp=1000, out=1000), row(model=SONNET4, inp=5)])
    assert amounts(draft) == ["0.00", "0.00"]  # 0.001 and 0.004 round to 0.00
    assert draft.lines[1].exact_amount == Decimal("0.004")
    assert draft.unpriced == ((SONNET4, "input_tokens", 5),)


@pytest.mark.parametrize(
    ("requests", "total"),
    [(0, "0.00"), (1000, "0.00"), (1001, "5.01"), (10000, "95.00"), (12000, "105.00")],
)
def test_graduated_on_requests_across_models(requests, total):
    rows = [row(requests=requests // 2), row(model=SONNET4, requests=requests - requests // 2)]
    draft = rate("graduated", rows)
    assert draft.total == Decimal(total)
    assert len(draft.lines) == 1  # a tiered charge is one line


@pytest.mark.parametrize(
    ("requests", "total"),
    [(0, "0.00"), (999, "0.00"), (1000, "0.00"), (1001, "15.01"), (10000, "105.00"),
     (10001, "50.01")],
)  # fmt: skip
def test_volume_on_requests_boundaries_inclusive(requests, total):
    assert rate("volume", [row(requests=requests)]).total == Decimal(total)


def test_tiered_line_shows_an_unrounded_breakdown():
    line = rate("graduated", [row(requests=10003)]).to_dict()["lines"][0]
    assert line["amount"] == "95.02"
    assert line["exact_amount"] == "95.015"
    assert [(t["tier"], t["quantity"], t["amount"]) for t in line["tiers"]] == [
        (1, 1000, "0"),
        (2, 9000, "95"),
        (3, 3, "0.015"),
    ]


@pytest.mark.parametrize(
    ("tokens", "total", "blocks"),
    [(0, "0.00", 0), (500_000, "0.00", 0), (500_001, "1.50", 1), (1_500_000, "1.50", 1),
     (1_500_001, "3.00", 2)],
)  # fmt: skip
def test_package_after_free_units(tokens, total, blocks):
    draft = rate("package", [row(inp=tokens // 2, out=tokens - tokens // 2)])
    assert draft.total == Decimal(total)
    assert draft.lines[-1].blocks == blocks


def test_subscription_base_fee_included_usage_and_overage():
    draft = rate("subscription", [row(requests=12500)])
    kinds = [(ln.kind, ln.quantity, str(ln.amount)) for ln in draft.lines]
    assert kinds == [
        ("base_fee", 1, "49.00"),
        ("included", 10000, "0.00"),
        ("usage", 2500, "10.00"),
    ]
    assert draft.total == Decimal("59.00")


def test_subscription_with_zero_usage_charges_the_base_fee_and_shows_every_line():
    draft = rate("subscription", [])
    assert [(ln.kind, str(ln.amount)) for ln in draft.lines] == [
        ("base_fee", "49.00"),
        ("included", "0.00"),
        ("usage", "0.00"),
    ]
    assert draft.total == Decimal("49.00")


def test_minimum_commitment_true_up_before_discounts_and_credits():
    draft = rate("committed", [row(inp=1_000_000, out=200_000)])
    assert draft.subtotal == Decimal("0.50")
    assert draft.true_up == Decimal("99.50")
    assert draft.lines[-1].kind == "true_up"
    assert draft.total == Decimal("100.00")
    above = rate("committed", [row(model=SONNET4, inp=40_000_000)])
    assert above.true_up == 0 and above.total == Decimal("120.00")


def test_discounts_fixed_first_then_percentages_in_order():
    draft = rate("discounted", [row(requests=200)])
    assert [(d.name, str(d.amount)) for d in draft.discounts] == [
        ("welcome", "10.00"),
        ("ten", "19.00"),
        ("five", "8.55"),
    ]
    assert draft.total == Decimal("162.45")


def test_percentage_discount_rounds_half_up_and_fixed_never_goes_below_zero():
    d = rate("discounted", [row(requests=5)])  # 5 - 10 fixed -> 0, not carried over
    assert d.discount_total == Decimal("5.00") and d.total == 0
    odd = rate("per_request", [row(requests=16665)], overrides=CustomerOverrides.from_dict(
        {"discounts": [{"type": "percent", "percent": "10"}]}))  # fmt: skip
    assert odd.subtotal == Decimal("33.33")
    assert odd.discounts[0].amount == Decimal("3.33")  # 3.333 -> 3.33
    assert odd.total == Decimal("30.00")


def test_credits_after_discounts_larger_grant_keeps_its_rest():
    grant = CreditGrant("g1", Decimal("100.00"), date(2025, 1, 1))
    draft = rate("per_request", [row(requests=12345)], grants=[grant])
    assert draft.credit_total == Decimal("24.69")
    assert draft.total == 0
    app = draft.credits.applications[0]
    assert (app.applied, app.remaining) == (Decimal("24.69"), Decimal("75.31"))


def test_combined_plan_with_base_fee_tokens_tiers_and_minimum():
    rows = [row(requests=150, inp=1_000_000, out=100_000), row(model=NOVA_PRO, requests=10)]
    draft = rate("combined", rows)
    # base 20 + haiku 0.275 -> 0.28, 0.1375 -> 0.14 + volume 160 x 0.005 = 0.80
    assert amounts(draft)[:4] == ["20.00", "0.28", "0.14", "0.80"]
    assert draft.subtotal == Decimal("21.22")
    assert draft.true_up == Decimal("28.78")
    assert draft.total == Decimal("50.00")


def test_customer_overrides_replace_unit_prices_and_add_discounts():
    overrides = CustomerOverrides.from_dict(
        {
            "prices": {"*": {"requests": "0.001"}, NOVA_PRO: {"input": "0.000002"}},
            "discounts": [{"type": "fixed", "amount": "1.00"}],
            "base_fee": "0.00",
        }
    )
    draft = rate("per_request", [row(requests=10000), row(model=NOVA_PRO, inp=1_000_000)],
                 overrides=overrides)  # fmt: skip
    # base fee overridden to 0.00 still shows; nova input is priced by the override alone
    assert amounts(draft) == ["0.00", "10.00", "2.00"]
    assert draft.total == Decimal("11.00")
    assert CustomerOverrides.from_dict(overrides.to_dict()) == overrides


def test_overrides_cannot_change_a_tiered_charge():
    overrides = CustomerOverrides.from_dict({"prices": {HAIKU: {"requests": "0.1"}}})
    with pytest.raises(InvalidInput, match="conflicts with charge"):
        rate("graduated", [row(requests=5)], overrides=overrides)


def test_markup_override_applies_to_per_token_charges():
    overrides = CustomerOverrides.from_dict({"markup": "0"})
    assert rate("markup", [row(inp=1_000_000)], overrides=overrides).total == Decimal("0.25")


def test_usage_outside_the_period_or_negative_is_refused():
    with pytest.raises(InvalidInput, match="outside period"):
        rate("per_request", [row("2025-07-01", requests=1)])
    with pytest.raises(InvalidInput, match="negative"):
        rate("per_request", [row(requests=-1)])


def test_cache_usage_without_a_cache_price_is_unpriced_on_the_list_plan():
    draft = rate_period(default_price_book(), JUNE, [row(inp=10, cread=7)])
    assert draft.unpriced == ((HAIKU, "cache_read_input_tokens", 7),)


def test_margin_per_model_uses_the_cost_in_force_each_day():
    b = book(
        f"""
default_plan = "p"
[plans.p]
base_fee = "5.00"
charges = [{{type = "per_token", markup = "100"}}, {{type = "per_request", price = "0.01"}}]
[[costs."{HAIKU}"]]
from = 2025-06-16
input = "0.0000001"
output = "0.000001"
"""
    )
    rows = [
        row("2025-06-01", inp=4_000_000, requests=100),  # list cost 1.00
        row("2025-06-20", inp=4_000_000, requests=100),  # private cost 0.40
        row("2025-06-20", model=SONNET4, out=100_000, requests=300),  # cost 1.50
    ]
    draft = rate_period(b, JUNE, rows)
    margin = {m["model"]: m for m in draft.to_dict()["margin"]["models"]}
    # haiku: 8M x 0.0000005 = 4.00, plus 200 of the 500 requests' 5.00 = 2.00
    assert margin[HAIKU] == {"model": HAIKU, "revenue": "6.00", "cost": "1.40",
                             "margin": "4.60", "cost_known": True}  # fmt: skip
    assert margin[SONNET4]["revenue"] == "6.00"  # 3.00 tokens + 3.00 requests
    assert margin[SONNET4]["cost"] == "1.50"
    assert margin[None]["revenue"] == "5.00"  # base fee
    assert draft.to_dict()["margin"]["revenue"] == draft.to_dict()["total"] == "17.00"
    assert draft.to_dict()["margin"]["margin"] == "14.10"


def test_margin_marks_models_with_no_cost_price():
    draft = rate("per_request", [row(model="custom.model", requests=3, inp=5)])
    assert draft.margins[0].cost_known is False


# ---- Properties ------------------------------------------------------------------------

counts = st.integers(0, 3_000_000)
money = st.decimals(min_value=0, max_value=500, places=2).map(str)


@st.composite
def scenarios(draw):
    tier_bound = draw(st.integers(1, 500_000))
    plan = f"""
default_plan = "p"
[plans.p]
base_fee = "{draw(money)}"
minimum = "{draw(money)}"
[[plans.p.charges]]
type = "per_token"
markup = "{draw(st.decimals(0, 300, places=3))}"
[[plans.p.charges]]
type = "{draw(st.sampled_from(["graduated", "volume"]))}"
metric = "requests"
[[plans.p.charges.tiers]]
up_to = {tier_bound}
price = "{draw(st.decimals(0, 1, places=5))}"
flat_fee = "{draw(money)}"
[[plans.p.charges.tiers]]
price = "{draw(st.decimals(0, 1, places=7))}"
[[plans.p.charges]]
type = "package"
metric = "tokens"
size = {draw(st.integers(1, 10**6))}
price = "{draw(money)}"
[[plans.p.discounts]]
type = "fixed"
amount = "{draw(money)}"
[[plans.p.discounts]]
type = "percent"
percent = "{draw(st.decimals(0, 100, places=2))}"
"""
    models = [HAIKU, SONNET4, NOVA_PRO]
    rows = [
        row(
            f"2025-06-{draw(st.integers(1, 30)):02d}",
            draw(st.sampled_from(models)),
            draw(counts),
            draw(counts),
            draw(counts),
            draw(counts),
            draw(counts),
        )  # fmt: skip
        for _ in range(draw(st.integers(0, 6)))
    ]
    grants = [
        CreditGrant(
            f"g{i}",
            Decimal(draw(money)),
            date(2025, draw(st.integers(1, 8)), 1),
            priority=draw(st.integers(0, 2)),
        )  # fmt: skip
        for i in range(draw(st.integers(0, 3)))
    ]
    return book(plan), rows, grants


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_lines_true_up_discounts_and_credits_always_sum_to_the_total(scenario):
    b, rows, grants = scenario
    out = rate_period(b, JUNE, rows, grants=grants).to_dict()
    lines = sum(Decimal(ln["amount"]) for ln in out["lines"])
    assert Decimal(out["total"]) >= 0
    assert lines - Decimal(out["discount_total"]) - Decimal(out["credit_total"]) == Decimal(
        out["total"]
    )
    assert Decimal(out["subtotal"]) + Decimal(out["true_up"]) == lines
    for value in (out["subtotal"], out["true_up"], out["discount_total"], out["total"]):
        assert Decimal(value) == Decimal(value).quantize(Decimal("0.01"))
