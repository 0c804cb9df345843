from decimal import Decimal

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.money import (
    format_decimal,
    format_money,
    from_cents,
    round_half_up,
    to_cents,
    to_decimal,
    to_money,
    to_price,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.005", "0.01"), ("0.004999", "0.00"), ("2.675", "2.68"), ("-0.005", "-0.01"),
     ("50.005", "50.01"), ("1", "1.00")],
)  # fmt: skip
def test_rounding_is_half_up_to_the_cent_not_bankers(value, expected):
    assert str(round_half_up(Decimal(value))) == expected


def test_floats_are_refused_because_they_are_not_exact():
    with pytest.raises(InvalidInput, match="float"):
        to_money(0.1)


def test_money_accepts_strings_ints_and_decimals():
    assert to_money("12.30") == Decimal("12.30")
    assert to_money(5) == Decimal(5)
    assert to_money(Decimal("0.01")) == Decimal("0.01")


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", "", "1.2.3"])
def test_malformed_numbers_are_invalid_input(bad):
    with pytest.raises(InvalidInput):
        to_decimal(bad, "price")


def test_money_has_at_most_cents_and_prices_at_most_twelve_places():
    with pytest.raises(InvalidInput, match="2 decimal places"):
        to_money("1.001")
    assert to_money("1.100") == Decimal("1.100")  # trailing zeros are not extra precision
    assert to_price("0.000000000001") == Decimal("1E-12")
    with pytest.raises(InvalidInput, match="12 decimal places"):
        to_price("0.0000000000001")
    with pytest.raises(InvalidInput, match="negative"):
        to_price("-0.1")


def test_formats_and_cents():
    assert format_money(Decimal("3")) == "3.00"
    assert format_decimal(Decimal("2.5E-7")) == "0.00000025"
    assert format_decimal(Decimal("1.2300")) == "1.23"
    assert format_decimal(Decimal("0E-12")) == "0"
    assert format_decimal(Decimal("100")) == "100"
    assert to_cents(Decimal("12.345")) == 1235
    assert from_cents(1235) == Decimal("12.35")
