"""Per-token prices the proxy uses to meter monthly budgets.

The configuration is a small JSON document (``prices export`` will generate it)::

    {"currency": "USD",
     "models": {"<foundation id>": {"input": "0.00000025", "output": "0.00000125",
                                    "cache_read": "...", "cache_write": "..."}}}

Prices are decimal strings per token. The meter stores spend as an integer number of
pico-units (10^-12 of the currency's main unit): the price book allows 12 decimal places,
so every price times a token count is an exact integer there, and DynamoDB's 38-digit
numbers hold trillions of dollars of it. A price with more than 12 decimals is rounded
up to the next pico-unit (the budget errs against overspending).

A missing ``cache_read`` or ``cache_write`` price falls back to the ``input`` price.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from pathlib import Path

PICO = 10**12
DEFAULT_PRICES_FILE = Path(__file__).resolve().parent.parent / "data" / "proxy_prices.json"


class PriceConfigError(ValueError):
    """The price configuration is malformed: the proxy refuses to start with it."""


def to_pico(amount: str | Decimal) -> int:
    """A decimal amount in the main unit as an integer of pico-units, rounded up."""
    if isinstance(amount, float):
        # A JSON number is parsed as a binary float: not exact, so not money (pricing rules).
        raise PriceConfigError(f'price {amount!r} is a number; write it as a string ("0.25")')
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise PriceConfigError(f"not a decimal amount: {amount!r}") from None
    if not value.is_finite() or value < 0:
        raise PriceConfigError(f"not a non-negative decimal amount: {amount!r}")
    return int((value * PICO).to_integral_value(rounding=ROUND_CEILING))


def from_pico(amount: int) -> Decimal:
    return Decimal(amount) / PICO


@dataclass(frozen=True)
class ModelPrice:
    """Pico-units per token."""

    input: int
    output: int
    cache_read: int
    cache_write: int

    def cost(self, usage) -> int:
        """Exact cost of one request's usage (an object with the four token counts)."""
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_input_tokens * self.cache_read
            + usage.cache_write_input_tokens * self.cache_write
        )


@dataclass(frozen=True)
class PriceTable:
    currency: str
    models: dict[str, ModelPrice]

    def get(self, foundation_model: str) -> ModelPrice | None:
        return self.models.get(foundation_model)

    @classmethod
    def parse(cls, document: dict) -> PriceTable:
        if not isinstance(document, dict) or not isinstance(document.get("models"), dict):
            raise PriceConfigError('prices must be a JSON object with a "models" object')
        currency = document.get("currency", "USD")
        if not isinstance(currency, str) or not currency:
            raise PriceConfigError("prices: currency must be a string")
        models = {}
        for model, entry in document["models"].items():
            if not isinstance(entry, dict) or "input" not in entry or "output" not in entry:
                raise PriceConfigError(f"prices: {model} needs at least input and output prices")
            unknown = set(entry) - {"input", "output", "cache_read", "cache_write"}
            if unknown:
                raise PriceConfigError(f"prices: {model} has unknown keys {sorted(unknown)}")
            base = to_pico(entry["input"])
            models[model] = ModelPrice(
                input=base,
                output=to_pico(entry["output"]),
                cache_read=to_pico(entry.get("cache_read", entry["input"])),
                cache_write=to_pico(entry.get("cache_write", entry["input"])),
            )
        return cls(currency, models)

    @classmethod
    def from_env(cls, env: os._Environ | dict | None = None) -> PriceTable:
        """``BEDROCK_BILLING_PRICES`` (inline JSON) wins over ``BEDROCK_BILLING_PRICES_FILE``,
        which wins over the packaged default."""
        env = os.environ if env is None else env
        inline = env.get("BEDROCK_BILLING_PRICES")
        try:
            if inline:
                return cls.parse(json.loads(inline))
            path = env.get("BEDROCK_BILLING_PRICES_FILE") or DEFAULT_PRICES_FILE
            with open(path, encoding="utf-8") as handle:
                return cls.parse(json.load(handle))
        except (OSError, json.JSONDecodeError) as exc:
            raise PriceConfigError(f"cannot read prices: {exc}") from None
