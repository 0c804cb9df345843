"""Charge models and their arithmetic: per unit, per token, graduated, volume, package.

Amounts computed here are exact (``Decimal`` in ``PRICING_CONTEXT``); the invoice rounds
each line once, so a tiered charge's tier amounts are summed before any rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from ..money import PRICING_CONTEXT, ZERO
from ..timeutil import Period

ALL_MODELS = "*"
# Metrics a charge may price: the row counters, plus "tokens" (all four token counts).
CHARGE_METRICS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "tokens",
)
# Price-book keys of a per-token price, by the usage counter they price.
TOKEN_PRICE_KEYS = {
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_read_input_tokens": "cache_read",
    "cache_write_input_tokens": "cache_write",
}
PRICE_KEY_METRICS = {v: k for k, v in TOKEN_PRICE_KEYS.items()}

_mul = PRICING_CONTEXT.multiply
_add = PRICING_CONTEXT.add


@dataclass(frozen=True)
class TokenPrices:
    """Per-token prices of one model; ``None`` where the model has no such price.

    ``cache_write`` prices prompt-cache writes of the default 5-minute lifetime and
    ``cache_write_1h`` those of the 1-hour lifetime. ``variants`` holds the prices of the
    usage types AWS bills apart (a service tier, an inference scope, batch), by usage-type
    label (core/pricing/usagetypes.py); they are for AWS cost, not for customer plans.
    """

    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    variants: tuple[tuple[str, TokenPrices], ...] = ()

    def for_metric(self, metric: str) -> Decimal | None:
        return getattr(self, TOKEN_PRICE_KEYS[metric])

    def variant(self, label: str) -> TokenPrices | None:
        for name, prices in self.variants:
            if name == label:
                return prices
        return None

    def marked_up(self, markup_percent: Decimal) -> TokenPrices:
        """``list x (1 + markup%)``, exact: only the invoice line is rounded."""
        factor = PRICING_CONTEXT.add(1, PRICING_CONTEXT.divide(markup_percent, 100))
        return TokenPrices(
            *(None if p is None else _mul(p, factor) for p in self.as_tuple()),
            variants=tuple((n, v.marked_up(markup_percent)) for n, v in self.variants),
        )

    def as_tuple(self) -> tuple[Decimal | None, ...]:
        return (self.input, self.output, self.cache_read, self.cache_write, self.cache_write_1h)


@dataclass(frozen=True)
class Tier:
    up_to: int | None  # inclusive; None for the last, unbounded tier
    price: Decimal
    flat_fee: Decimal = ZERO


@dataclass(frozen=True)
class TierPart:
    """One tier's share of a tiered line (unrounded): units first..last priced at price."""

    tier: int  # 1-based position in the charge's tiers
    first_unit: int
    last_unit: int | None
    quantity: int
    unit_price: Decimal
    flat_fee: Decimal
    amount: Decimal


def graduated_amount(
    quantity: int, tiers: tuple[Tier, ...]
) -> tuple[Decimal, tuple[TierPart, ...]]:
    """Each unit priced by the tier it falls in; a tier's flat fee once it holds a unit."""
    total = ZERO
    parts: list[TierPart] = []
    lower = 0  # units below this tier
    for index, tier in enumerate(tiers, start=1):
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        units = upper - lower
        amount = _add(_mul(units, tier.price), tier.flat_fee)
        parts.append(
            TierPart(index, lower + 1, tier.up_to, units, tier.price, tier.flat_fee, amount)
        )
        total = _add(total, amount)
        if tier.up_to is None:
            break
        lower = tier.up_to
    return total, tuple(parts)


def volume_amount(quantity: int, tiers: tuple[Tier, ...]) -> tuple[Decimal, tuple[TierPart, ...]]:
    """Every unit priced by the tier that holds the total, plus that tier's flat fee."""
    if quantity <= 0:
        return ZERO, ()
    lower = 0
    for index, tier in enumerate(tiers, start=1):
        if tier.up_to is None or quantity <= tier.up_to:
            amount = _add(_mul(quantity, tier.price), tier.flat_fee)
            part = TierPart(
                index, lower + 1, tier.up_to, quantity, tier.price, tier.flat_fee, amount
            )
            return amount, (part,)
        lower = tier.up_to
    raise AssertionError("the last tier is unbounded (checked when the book is loaded)")


def package_blocks(quantity: int, size: int) -> int:
    """Started blocks are billed whole: ceil(quantity / size), in integers."""
    return -(-max(0, quantity) // size)


@dataclass(frozen=True)
class UnitCharge:
    """Per unit: quantity x price (``per_request`` is this with metric ``requests``)."""

    name: str
    metric: str
    model: str
    price: Decimal
    included: int = 0
    type: str = "per_unit"


@dataclass(frozen=True)
class TokenCharge:
    """Per token per model: own prices where given, else list price x (1 + markup%)."""

    name: str
    models: tuple[str, ...] | None  # None: every model with a price
    markup: Decimal = ZERO  # percent
    prices: Mapping[str, TokenPrices] = field(default_factory=dict)
    type: str = "per_token"


@dataclass(frozen=True)
class TieredCharge:
    """Graduated or volume tiers on one metric of one model (or all models, ``*``)."""

    name: str
    mode: str  # "graduated" | "volume"
    metric: str
    model: str
    tiers: tuple[Tier, ...]
    included: int = 0

    @property
    def type(self) -> str:
        return self.mode

    def amount(self, quantity: int) -> tuple[Decimal, tuple[TierPart, ...]]:
        fn = graduated_amount if self.mode == "graduated" else volume_amount
        return fn(quantity, self.tiers)


@dataclass(frozen=True)
class PackageCharge:
    """A price per started block of ``size`` units, after ``included`` free units."""

    name: str
    metric: str
    model: str
    size: int
    price: Decimal
    included: int = 0
    type: str = "package"


Charge = UnitCharge | TokenCharge | TieredCharge | PackageCharge


@dataclass(frozen=True)
class Discount:
    kind: str  # "fixed" | "percent"
    value: Decimal  # an amount for fixed, a percentage (0-100) for percent
    name: str = ""


@dataclass(frozen=True)
class Plan:
    """One version of a named plan: what a customer on it pays for a period."""

    name: str
    charges: tuple[Charge, ...] = ()
    base_fee: Decimal | None = None
    minimum: Decimal | None = None
    discounts: tuple[Discount, ...] = ()
    description: str = ""
    from_period: Period | None = None  # None: in force from the beginning
    # The invoice also lists each key's usage (docs/pricing.md, "Lines per key").
    lines_per_key: bool = False
