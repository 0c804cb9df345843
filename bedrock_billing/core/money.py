"""Money: ``decimal.Decimal`` built from strings, half-up rounding to the cent, cents.

Every amount that flows into an invoice goes through here, so there is one rounding rule
(half-up, docs/pricing.md) and no float anywhere. Prices keep up to 12 decimal places
(a token can cost $0.00000025); amounts on an invoice are rounded to the cent.
"""

from __future__ import annotations

import decimal
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .errors import InvalidInput

CENT = Decimal("0.01")
ZERO = Decimal("0")
PRICE_PLACES = 12  # the finest price the price book accepts: 0.000000000001
MAX_AMOUNT = Decimal(10**15)  # far above any price, fee or grant; keeps sums exact at 60 digits

# Pricing arithmetic is exact products and sums of short decimals; 60 digits is far more
# than a month of tokens times a 12-place price needs, so nothing rounds before we say so.
PRICING_CONTEXT = decimal.Context(prec=60, rounding=ROUND_HALF_UP)


def to_decimal(value: object, what: str = "amount", *, places: int = PRICE_PLACES) -> Decimal:
    """A Decimal from a string, int or Decimal; floats are refused (they are not exact)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidInput(
            f'{what}: {value!r} is a float; give money as a decimal string such as "0.25"'
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise InvalidInput(f"{what}: {value!r} is not a decimal number") from None
    else:
        raise InvalidInput(f"{what}: expected a decimal string, got {type(value).__name__}")
    if not result.is_finite():
        raise InvalidInput(f"{what}: {value!r} is not a finite number")
    if abs(result) >= MAX_AMOUNT:  # 1e400 parses, but no arithmetic or storage holds it
        raise InvalidInput(f"{what}: {str(value)[:40]!r} is out of range (below 10^15)")
    # Trailing zeros are harmless ("0.10" at 1 place); real digits past the limit are not.
    if result != 0 and result.normalize(PRICING_CONTEXT).as_tuple().exponent < -places:
        raise InvalidInput(f"{what}: {value!r} has more than {places} decimal places")
    return result


def to_money(value: object, what: str = "amount") -> Decimal:
    """An amount in the currency's main unit, at most to the cent (fees, grants, discounts)."""
    return to_decimal(value, what, places=2)


def to_price(value: object, what: str = "price") -> Decimal:
    """A non-negative unit price with up to 12 decimal places."""
    result = to_decimal(value, what, places=PRICE_PLACES)
    if result < 0:
        raise InvalidInput(f"{what}: {value!r} is negative; prices are zero or more")
    return result


def round_half_up(amount: Decimal) -> Decimal:
    """Round to the cent, half-up (0.005 -> 0.01; -0.005 -> -0.01), never banker's rounding."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP, context=PRICING_CONTEXT)


def format_money(amount: Decimal) -> str:
    """A money amount as the JSON/CSV string: rounded to the cent, two places, no exponent."""
    return f"{round_half_up(amount):.2f}"


def format_decimal(value: Decimal) -> str:
    """An exact decimal (a unit price, an unrounded tier amount) as a plain string.

    Trailing zeros are dropped and the exponent never shows: 2.5E-7 becomes "0.00000025".
    """
    normal = value.normalize(PRICING_CONTEXT)
    return "0" if normal == 0 else f"{normal:f}"


def to_cents(amount: Decimal) -> int:
    """Integer cents of an amount (rounded half-up first): how DynamoDB stores money."""
    return int(round_half_up(amount) * 100)


def from_cents(cents: int) -> Decimal:
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise InvalidInput(f"cents must be an integer, got {cents!r}")
    return (Decimal(cents) / 100).quantize(CENT)
