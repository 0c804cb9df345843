"""Tier arithmetic, by hand-worked examples and by properties."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from bedrock_billing.core.pricing.charges import (
    Tier,
    TokenPrices,
    graduated_amount,
    package_blocks,
    volume_amount,
)

D = Decimal
TIERS = (
    Tier(1000, D("0")),
    Tier(10000, D("0.01"), D("5")),
    Tier(None, D("0.005")),
)


def test_graduated_prices_each_unit_by_its_tier_and_up_to_is_inclusive():
    assert graduated_amount(0, TIERS) == (D(0), ())
    assert graduated_amount(1000, TIERS)[0] == 0  # all in tier 1: tier 2's fee not charged
    assert graduated_amount(1001, TIERS)[0] == D("5.01")  # one unit in tier 2 + its flat fee
    assert graduated_amount(10000, TIERS)[0] == D("95.00")
    total, parts = graduated_amount(12000, TIERS)
    assert total == D("105.000")
    assert [(p.tier, p.first_unit, p.last_unit, p.quantity) for p in parts] == [
        (1, 1, 1000, 1000),
        (2, 1001, 10000, 9000),
        (3, 10001, None, 2000),
    ]
    assert sum(p.amount for p in parts) == total


def test_volume_prices_all_units_by_the_tier_the_total_reaches():
    assert volume_amount(0, TIERS) == (D(0), ())
    assert volume_amount(1000, TIERS)[0] == 0
    assert volume_amount(1001, TIERS)[0] == D("15.01")
    assert volume_amount(10000, TIERS)[0] == D("105.00")
    # Crossing a boundary can lower the total (documented by Stripe): 10001 x 0.005.
    total, parts = volume_amount(10001, TIERS)
    assert total == D("50.005")
    assert parts[0].tier == 3 and parts[0].quantity == 10001


def test_package_bills_started_blocks_whole():
    assert [package_blocks(q, 1000) for q in (0, 1, 1000, 1001, 2000)] == [0, 1, 1, 2, 2]


def test_markup_stays_exact():
    prices = TokenPrices(D("0.00000025"), D("0.00000125"), None, None).marked_up(D("20"))
    assert prices.input == D("0.0000003")
    assert prices.output == D("0.0000015")
    assert prices.cache_read is None


prices = st.decimals(min_value=0, max_value=10, places=6)


@st.composite
def tier_lists(draw):
    bounds = sorted(draw(st.sets(st.integers(1, 10**7), min_size=0, max_size=4)))
    tiers = [Tier(b, draw(prices), draw(prices)) for b in bounds]
    return tuple(tiers + [Tier(None, draw(prices), draw(prices))])


@given(tier_lists(), st.integers(0, 2 * 10**7), st.integers(0, 10**6))
def test_graduated_total_never_decreases_as_usage_grows(tiers, q, more):
    assert graduated_amount(q + more, tiers)[0] >= graduated_amount(q, tiers)[0]


@given(tier_lists(), st.data())
def test_volume_and_graduated_agree_within_the_first_tier(tiers, data):
    limit = tiers[0].up_to if tiers[0].up_to is not None else 10**9
    q = data.draw(st.integers(0, limit))
    assert volume_amount(q, tiers)[0] == graduated_amount(q, tiers)[0]


@given(tier_lists(), st.integers(0, 2 * 10**7))
def test_graduated_parts_add_up_and_cover_every_unit(tiers, q):
    total, parts = graduated_amount(q, tiers)
    assert sum((p.amount for p in parts), D(0)) == total
    assert sum(p.quantity for p in parts) == q
