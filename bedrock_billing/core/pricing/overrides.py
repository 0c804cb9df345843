"""Per-customer adjustments to a plan, without cloning it: extra discounts, unit prices.

Stored on the customer (as the dict ``to_dict`` gives), passed with the plan name to
``rate_period``. A unit price override replaces a per-unit or per-token price; it may
also price usage the plan leaves unpriced. It cannot change a tiered or package charge
(those price the period total, not a unit), and saying so is an InvalidInput.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from ..errors import InvalidInput
from ..money import format_decimal, format_money, to_money, to_price
from .charges import ALL_MODELS, CHARGE_METRICS, PRICE_KEY_METRICS, Discount
from .loader import parse_discount

_KEYS = {"discounts", "prices", "markup", "base_fee", "minimum"}


@dataclass(frozen=True)
class CustomerOverrides:
    discounts: tuple[Discount, ...] = ()  # applied after the plan's, same order rules
    prices: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)  # (model, metric)
    markup: Decimal | None = None  # replaces per_token charges' markup (percent)
    base_fee: Decimal | None = None  # replaces the plan's base fee
    minimum: Decimal | None = None  # replaces the plan's minimum commitment

    def price_for(self, model: str, metric: str) -> Decimal | None:
        """The override for (model, metric): the model's own first, then the ``*`` one."""
        price = self.prices.get((model, metric))
        return self.prices.get((ALL_MODELS, metric)) if price is None else price

    @classmethod
    def from_dict(cls, data: Mapping | None, source: str = "overrides") -> CustomerOverrides:
        """From ``{"discounts": [...], "prices": {"<model>|*": {"<metric>": "<price>"}},
        "markup": "10", "base_fee": "0", "minimum": "50.00"}``; price keys may be metric
        names or the price book's input/output/cache_read/cache_write."""
        if not data:
            return cls()
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{source}: expected an object")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise InvalidInput(f"{source}: unknown key {unknown[0]!r}")
        prices: dict[tuple[str, str], Decimal] = {}
        for model, metrics in (data.get("prices") or {}).items():
            if not isinstance(metrics, Mapping):
                raise InvalidInput(f"{source}.prices.{model}: expected an object of prices")
            for key, value in metrics.items():
                metric = PRICE_KEY_METRICS.get(key, key)
                if metric not in CHARGE_METRICS:
                    raise InvalidInput(f"{source}.prices.{model}: unknown metric {key!r}")
                prices[(model, metric)] = to_price(value, f"{source}.prices.{model}.{key}")
        discounts = tuple(
            parse_discount(dict(item), source, f"discounts[{i}]")
            for i, item in enumerate(data.get("discounts") or [])
        )

        def money(key):
            if data.get(key) is None:
                return None
            value = to_money(data[key], f"{source}.{key}")
            if value < 0:
                raise InvalidInput(f"{source}.{key}: negative")
            return value

        markup = None
        if data.get("markup") is not None:
            markup = to_price(data["markup"], f"{source}.markup")
        return cls(discounts, prices, markup, money("base_fee"), money("minimum"))

    def to_dict(self) -> dict:
        prices: dict[str, dict[str, str]] = {}
        for (model, metric), price in sorted(self.prices.items()):
            prices.setdefault(model, {})[metric] = format_decimal(price)
        out: dict = {}
        if self.discounts:
            out["discounts"] = [
                {"type": d.kind, "name": d.name}
                | (
                    {"amount": format_money(d.value)}
                    if d.kind == "fixed"
                    else {"percent": format_decimal(d.value)}
                )
                for d in self.discounts
            ]
        if prices:
            out["prices"] = prices
        if self.markup is not None:
            out["markup"] = format_decimal(self.markup)
        for key in ("base_fee", "minimum"):
            if getattr(self, key) is not None:
                out[key] = format_money(getattr(self, key))
        return out
