"""The usage types AWS bills apart, and the price-book price of each.

Bedrock's bill prices a model's tokens by token type (input, output, cache read, cache
write), by service tier (``default``, ``priority``, ``flex``, ``reserved``: the values of
``ServiceTierType`` in botocore's bedrock-runtime model), by whether a cross-Region
(``geo``) or global inference profile served the call, and by batch inference. A price book
names each combination by a *usage-type label*: ``""`` for on-demand, in-Region, default
tier; else the scope, the tier and ``batch`` joined by ``-`` in that order
(``global``, ``priority``, ``geo-flex``, ``batch``). docs/pricing.md has the format.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ..models import inference_scope
from .book import PriceBook
from .charges import TokenPrices

TIERS = ("default", "priority", "flex", "reserved")
SCOPES = ("in_region", "geo", "global")
# Price-book keys of a per-token price, by the token type AWS bills.
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
TOKEN_TYPE_NAMES = {
    "input": "input tokens",
    "output": "output tokens",
    "cache_read": "cache read tokens",
    "cache_write": "cache write tokens (5-minute)",
    "cache_write_1h": "cache write tokens (1-hour)",
}


def variant_label(tier: str = "default", scope: str = "in_region", batch: bool = False) -> str:
    parts = []
    if scope and scope != "in_region":
        parts.append(scope)
    if tier and tier != "default":
        parts.append(tier)
    if batch:
        parts.append("batch")
    return "-".join(parts)


def _labels() -> frozenset[str]:
    out = set()
    for scope in SCOPES:
        for tier in TIERS:
            for batch in (False, True):
                if batch and tier != "default":
                    continue  # batch jobs have no service tier
                label = variant_label(tier, scope, batch)
                if label:
                    out.add(label)
    return frozenset(out)


VARIANT_LABELS = _labels()


def parse_label(label: str) -> tuple[str, str, bool]:
    """(tier, scope, batch) of a usage-type label."""
    parts = label.split("-") if label else []
    scope = parts.pop(0) if parts and parts[0] in SCOPES else "in_region"
    tier = parts.pop(0) if parts and parts[0] in TIERS else "default"
    batch = bool(parts) and parts[0] == "batch"
    return tier, scope, batch


@dataclass(frozen=True)
class CostPrice:
    """The price-book price of one model's token type in one usage type on one day."""

    price: Decimal | None  # None: the book prices no such usage
    entry: str  # the price-book entry that gave it (or would have), for reports


def _entry(book: PriceBook, model: str, day: date) -> str:
    versions = book.costs.get(model)
    if versions:
        starts = [s for s, _ in versions if s is None or s <= day]
        if starts:
            start = starts[-1]
            return f"costs.{model!r}" + (f" (from {start})" if start else "")
    return f"models.{model!r}"


def cost_price(book: PriceBook, model: str, day: date, label: str, token_type: str) -> CostPrice:
    """What AWS charges per token of ``token_type`` for ``label`` usage of ``model`` on
    ``day``, by the book. A variant the book lacks: a scope alone (cross-Region or
    global) falls back to the on-demand price, as AWS prices those calls at the source
    Region's on-demand price; a tier or batch does not (it is unpriced, not guessed)."""
    base = book.cost_price(model, day)
    entry = _entry(book, model, day)
    if base is None:
        return CostPrice(None, entry)
    prices: TokenPrices | None = base
    where = entry
    if label:
        prices = base.variant(label)
        where = f"{entry} variant {label!r}"
        if prices is None:
            tier, scope, batch = parse_label(label)
            fallback = variant_label(tier, "in_region", batch)
            prices = base.variant(fallback) if fallback else base
            where = f"{entry} variant {fallback!r}" if fallback else entry
    if prices is None:
        return CostPrice(None, f"{entry} variant {label!r}")
    return CostPrice(getattr(prices, token_type), f"{where} {token_type}")


def check_variants(names: Iterable[str]) -> list[str]:
    """The names that are not usage-type labels (for the loader's error)."""
    return sorted(n for n in names if n not in VARIANT_LABELS)


__all__ = [
    "SCOPES",
    "TIERS",
    "TOKEN_TYPES",
    "TOKEN_TYPE_NAMES",
    "VARIANT_LABELS",
    "CostPrice",
    "check_variants",
    "cost_price",
    "inference_scope",
    "parse_label",
    "variant_label",
]
