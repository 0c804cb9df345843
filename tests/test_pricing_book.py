"""Loading and validating price books; plan versions, costs by day, plan history."""

from datetime import date
from decimal import Decimal

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.pricing import (
    SHIPPED_PLAN,
    PlanAssignment,
    default_price_book,
    load_price_book,
    plan_in_force,
)
from bedrock_billing.core.timeutil import Period
from tests.pricing_helpers import HAIKU, book

JUNE = Period(2025, 6)


def test_shipped_book_has_the_common_models_dated_list_prices_and_the_list_plan():
    shipped = default_price_book()
    assert shipped.currency == "USD"
    assert shipped.default_plan == SHIPPED_PLAN
    assert shipped.list_prices_date and shipped.list_prices_region == "us-east-1"
    for model in (
        HAIKU,
        "anthropic.claude-3-sonnet-20240229-v1:0",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "amazon.titan-text-express-v1",
        "amazon.nova-micro-v1:0",
        "amazon.nova-lite-v1:0",
        "amazon.nova-pro-v1:0",
        "meta.llama3-8b-instruct-v1:0",
        "meta.llama3-70b-instruct-v1:0",
        "mistral.mistral-7b-instruct-v0:2",
        "mistral.mistral-large-2402-v1:0",
    ):
        assert shipped.list_price(model, JUNE).input > 0, model
    assert shipped.list_price(HAIKU, JUNE).input == Decimal("0.00000025")
    assert load_price_book(None) == shipped


def test_a_book_overrides_a_model_and_keeps_the_others():
    b = book(f'[models."{HAIKU}"]\ninput = "0.000001"\noutput = "0.000002"\n')
    assert b.list_price(HAIKU, JUNE).input == Decimal("0.000001")
    assert b.list_price("amazon.nova-pro-v1:0", JUNE).input == Decimal("0.0000008")
    assert b.default_plan == "list"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('default_plan = "gold"', "default_plan 'gold' is not a plan"),
        ('[plans.p]\ncharges = [{type = "per_unit", price = 0.1}]', "TOML float"),
        ('[plans.p]\ncharges = [{type = "per_unit", price = 1}]', "must be a string"),
        ('[plans.p]\ncharges = [{type = "per_unit", price = "-1"}]', "negative"),
        ('[plans.p]\ncharges = [{type = "flat_rate", price = "1"}]', "unknown charge type"),
        ('[plans.p]\ncharges = [{type = "per_unit", price = "1", upto = 3}]', "unknown key 'upto'"),
        ('[plans.p]\ncharges = [{type = "per_unit", price = "1", metric = "x"}]', "metric"),
        (
            '[plans.p]\ncharges = [{type = "graduated", metric = "requests", tiers = ['
            '{up_to = 100, price = "1"}, {up_to = 100, price = "1"}, {price = "1"}]}]',
            "tiers must increase",
        ),
        (
            '[plans.p]\ncharges = [{type = "volume", metric = "requests", tiers = ['
            '{up_to = 100, price = "1"}, {up_to = 200, price = "1"}]}]',
            "last tier is unbounded",
        ),
        (
            '[plans.p]\ncharges = [{type = "graduated", metric = "requests", tiers = ['
            '{price = "1"}, {price = "1"}]}]',
            "needs up_to",
        ),
        ('[plans.p]\ncharges = [{type = "package", metric = "requests", price = "1"}]', "size"),
        ('[plans.p]\nbase_fee = "9.999"', "2 decimal places"),
        ('[plans.p]\ndiscounts = [{type = "percent", percent = "120"}]', "above 100"),
        ('[plans.p]\ndiscounts = [{type = "coupon"}]', "fixed"),
        ('currency = "dollars"', "3-letter"),
        ("plans = 3", "expected a table"),
        ("[plans.p\n", "not valid TOML"),
        ('[[plans.p]]\nfrom = "2025-13"', "invalid period"),
        ('[[costs."m"]]\nfrom = "2025-02-30"\ninput = "1"', "no such day"),
    ],
)
def test_bad_books_are_one_clear_invalid_input(toml, message):
    with pytest.raises(InvalidInput, match=message):
        book(toml)


def test_unknown_plan_names_the_plans_there_are():
    with pytest.raises(InvalidInput, match="unknown plan 'gold'.*list"):
        default_price_book().plan("gold", JUNE)


def test_plan_versions_take_effect_from_their_period():
    b = book(
        """
[[plans.pro]]
base_fee = "10.00"
[[plans.pro]]
from = "2025-07"
base_fee = "12.00"
"""
    )
    assert b.plan("pro", JUNE).base_fee == Decimal("10.00")
    assert b.plan("pro", Period(2025, 7)).base_fee == Decimal("12.00")
    assert b.plan("pro", Period(2026, 1)).base_fee == Decimal("12.00")


def test_a_plan_that_starts_later_has_no_version_before():
    b = book('[[plans.new]]\nfrom = "2025-07"\nbase_fee = "1.00"')
    with pytest.raises(InvalidInput, match="no version in force for 2025-06"):
        b.plan("new", JUNE)


def test_cost_changes_on_any_day_and_defaults_to_list_price():
    b = book(
        f"""
[[costs."{HAIKU}"]]
from = 2025-06-15
input = "0.0000002"
output = "0.000001"
"""
    )
    assert b.cost_price(HAIKU, date(2025, 6, 14)).input == Decimal("0.00000025")  # list
    assert b.cost_price(HAIKU, date(2025, 6, 15)).input == Decimal("0.0000002")
    assert b.cost_price("unknown.model", date(2025, 6, 15)) is None


def test_another_currency_does_not_inherit_usd_list_prices():
    b = book('currency = "EUR"\n[models.m]\ninput = "0.000001"')
    assert b.currency == "EUR"
    assert b.known_models() == ["m"]


def test_load_price_book_reports_a_missing_file(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        load_price_book(tmp_path / "nope.toml")
    path = tmp_path / "book.toml"
    path.write_text('default_plan = "p"\n[plans.p]\nbase_fee = "1.00"\n')
    assert load_price_book(path).default_plan == "p"


def test_plan_in_force_picks_the_latest_assignment_from_or_before_the_period():
    history = [
        {"plan": "starter", "from_period": "2025-01"},
        PlanAssignment("pro", Period(2025, 6)),
        {"plan": "enterprise", "from_period": "2025-09"},
    ]
    assert plan_in_force(history, "2024-12") is None
    assert plan_in_force(history, "2025-05") == "starter"
    assert plan_in_force(history, JUNE) == "pro"
    assert plan_in_force(history, "2025-08") == "pro"
    assert plan_in_force(history, "2025-09") == "enterprise"
    with pytest.raises(InvalidInput, match="from_period"):
        plan_in_force([{"plan": "x"}], JUNE)
