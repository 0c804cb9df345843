"""The proxy's usage and the price book held against AWS's bill (CUR 2.0), per model, usage
type and token type: what ``reconcile --against cur`` reports, computed with no I/O.

Three questions per (model, usage type, token type):

- tokens: did AWS bill the tokens the proxy served? (a difference is usage the proxy never
  recorded, or recorded but AWS did not bill);
- price: does the price book, priced per day with the entry in force that day, give what
  AWS charged for AWS's own tokens? (a difference is a stale or missing dated entry);
- unpriced: does the book price that usage type at all?

Money stays ``Decimal``; a cost difference counts when above ``tolerance`` for the period
(AWS rounds each line item, so a cent is the default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from ..billedusage import (
    TOKEN_COLUMNS,
    classify_usage_type,
    model_words,
    tokens_of,
    usage_type_model_part,
)
from ..money import ZERO, format_decimal, format_money
from ..timeutil import Period
from .book import PriceBook
from .usagetypes import TOKEN_TYPE_NAMES, cost_price, variant_label

DEFAULT_TOLERANCE = Decimal("0.01")
DAY_EPSILON = Decimal("0.000001")  # below this a day's cost is AWS's own rounding

Key = tuple[str, str, str]  # (model, usage-type label, token type)


@dataclass
class BillLine:
    """One model, usage type and token type over the period."""

    model: str
    usage_type: str  # the label: "" is on-demand, in-Region, default tier
    token_type: str
    proxy_tokens: int = 0
    aws_tokens: Decimal = ZERO
    aws_cost: Decimal = ZERO
    book_cost_of_aws: Decimal = ZERO  # the book's price for AWS's tokens, day by day
    book_cost_of_proxy: Decimal = ZERO
    unpriced_entry: str | None = None  # the entry the book lacks, when it prices none
    # (day, AWS's tokens, the book's price, AWS's cost, the entry in force)
    price_days: list[tuple[date, Decimal, Decimal, Decimal, str]] = field(default_factory=list)
    aws_usage_types: set[str] = field(default_factory=set)

    @property
    def tokens_differ(self) -> bool:
        return Decimal(self.proxy_tokens) != self.aws_tokens

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "usage_type": self.usage_type or "on-demand",
            "token_type": self.token_type,
            "proxy_tokens": self.proxy_tokens,
            "aws_tokens": _count(self.aws_tokens),
            "token_difference": _count(self.aws_tokens - self.proxy_tokens),
            "aws_cost": format_decimal(self.aws_cost),
            "book_cost": format_decimal(self.book_cost_of_aws),
            "cost_difference": format_decimal(self.aws_cost - self.book_cost_of_aws),
            "book_cost_of_proxy_usage": format_decimal(self.book_cost_of_proxy),
            "aws_usage_types": sorted(self.aws_usage_types),
        }


def _count(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else format_decimal(value)


@dataclass(frozen=True)
class Finding:
    kind: str  # tokens | price | unpriced | unknown_model | unclassified
    model: str
    usage_type: str
    token_type: str | None
    detail: str
    entry: str | None = None  # the price-book entry that explains it (or is missing)
    amount: Decimal = ZERO  # the money at stake: AWS cost minus the book's

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "model": self.model,
            "usage_type": self.usage_type or "on-demand",
            "token_type": self.token_type,
            "detail": self.detail,
            "price_book_entry": self.entry,
            "amount": format_money(self.amount),
        }


@dataclass
class BillCheck:
    period: Period
    lines: list[BillLine]
    findings: list[Finding]
    final: bool
    open_line_items: int
    line_items: int

    def totals(self) -> dict:
        aws = sum((b.aws_cost for b in self.lines), ZERO)
        book = sum((b.book_cost_of_aws for b in self.lines), ZERO)
        proxy = sum((b.book_cost_of_proxy for b in self.lines), ZERO)
        return {
            "differences": len(self.findings),
            "aws_cost": format_money(aws),
            "book_cost_of_aws_usage": format_money(book),
            "book_cost_of_proxy_usage": format_money(proxy),
            "line_items": self.line_items,
            "open_line_items": self.open_line_items,
        }


def model_index(book: PriceBook) -> dict[str, str]:
    """Names a bill may use for a model (its display name, its id's model part), reduced by
    ``model_words``, to the model id."""
    index: dict[str, str] = {}
    for model in sorted(set(book.models) | set(book.costs)):
        index.setdefault(model_words(book.model_name(model)), model)
        index.setdefault(model_words(model.split(".", 1)[-1].split(":")[0]), model)
        index.setdefault(model_words(model), model)
    return index


def match_model(index: Mapping[str, str], product_name: str, usage_type: str) -> str | None:
    for text in (product_name, usage_type_model_part(usage_type)):
        words = model_words(text) if text else ""
        if words and words in index:
            return index[words]
    return None


def check_bill(
    book: PriceBook,
    period: Period,
    proxy_rows: Iterable[Mapping],
    cur_rows: Iterable[Mapping],
    *,
    tolerance: Decimal = DEFAULT_TOLERANCE,
) -> BillCheck:
    lines: dict[Key, BillLine] = {}

    def line(key: Key) -> BillLine:
        if key not in lines:
            lines[key] = BillLine(*key)
        return lines[key]

    findings: list[Finding] = []
    proxy_rows = list(proxy_rows)
    for row in proxy_rows:
        day = date.fromisoformat(str(row["day"]))
        label = variant_label(str(row["service_tier"]), str(row["inference_scope"]))
        for token_type, column in TOKEN_COLUMNS.items():
            tokens = int(row[column] or 0)
            if not tokens:
                continue
            item = line((str(row["model"]), label, token_type))
            item.proxy_tokens += tokens
            price = cost_price(book, item.model, day, label, token_type)
            if price.price is not None:
                item.book_cost_of_proxy += tokens * price.price

    index = model_index(book)
    for row in proxy_rows:  # a model the book lacks still meets its own line items
        index.setdefault(model_words(str(row["model"])), str(row["model"]))
    open_items = total_items = 0
    unknown: dict[str, Decimal] = {}
    unclassified: dict[str, Decimal] = {}
    for row in cur_rows:
        total_items += int(row["line_items"])
        open_items += int(row["open_line_items"])
        kind = classify_usage_type(str(row["usage_type"]))
        cost = Decimal(row["unblended_cost"])
        if kind is None:
            unclassified[str(row["usage_type"])] = unclassified.get(str(row["usage_type"]), ZERO)
            unclassified[str(row["usage_type"])] += cost
            continue
        model = match_model(index, str(row["product_name"]), str(row["usage_type"]))
        if model is None:
            name = str(row["product_name"]) or usage_type_model_part(str(row["usage_type"]))
            unknown[name] = unknown.get(name, ZERO) + cost
            continue
        day = date.fromisoformat(str(row["day"]))
        label = variant_label(kind.tier, kind.scope, kind.batch)
        item = line((model, label, kind.token_type))
        tokens = tokens_of(Decimal(row["usage_amount"]), str(row["pricing_unit"]))
        item.aws_tokens += tokens
        item.aws_cost += cost
        item.aws_usage_types.add(str(row["usage_type"]))
        price = cost_price(book, model, day, label, kind.token_type)
        if price.price is None:
            item.unpriced_entry = price.entry
            continue
        expected = tokens * price.price
        item.book_cost_of_aws += expected
        item.price_days.append((day, tokens, price.price, cost, price.entry))

    for key in sorted(lines):
        item = lines[key]
        what = f"{TOKEN_TYPE_NAMES[item.token_type]}, {item.usage_type or 'on-demand'}"
        if item.tokens_differ:
            missing = item.aws_tokens - item.proxy_tokens
            detail = (
                f"AWS billed {_count(item.aws_tokens):,} {what}; the proxy recorded "
                f"{item.proxy_tokens:,} ("
                + ("usage the proxy did not record" if missing > 0 else "not billed by AWS")
                + ")"
            )
            findings.append(Finding("tokens", item.model, item.usage_type, item.token_type,
                                    detail))  # fmt: skip
        if item.unpriced_entry is not None and item.aws_cost:
            detail = (
                f"AWS charged {format_decimal(item.aws_cost)} for {what}, which the price "
                f"book does not price: add {item.unpriced_entry}"
            )
            findings.append(Finding("unpriced", item.model, item.usage_type, item.token_type,
                                    detail, item.unpriced_entry, item.aws_cost))  # fmt: skip
            continue
        gap = item.aws_cost - item.book_cost_of_aws
        if abs(gap) > tolerance:
            findings.append(_price_finding(item, what, gap))
    for name, cost in sorted(unknown.items()):
        findings.append(Finding("unknown_model", name, "", None,
                                f"AWS charged {format_decimal(cost)} for a model the price "
                                "book does not know", None, cost))  # fmt: skip
    for usage_type, cost in sorted(unclassified.items()):
        if cost:
            findings.append(Finding("unclassified", "", usage_type, None,
                                    f"AWS charged {format_decimal(cost)} under a usage type "
                                    "that bills no tokens", None, cost))  # fmt: skip
    final = total_items > 0 and open_items == 0
    ordered = [lines[k] for k in sorted(lines)]
    return BillCheck(period, ordered, findings, final, open_items, total_items)


def _price_finding(item: BillLine, what: str, gap: Decimal) -> Finding:
    """Which days AWS's unit price left the book's, and the entry in force on them."""
    off = [
        (day, tokens, price, cost, entry)
        for day, tokens, price, cost, entry in sorted(item.price_days)
        if abs(cost - tokens * price) > DAY_EPSILON
    ]
    entries = sorted({entry for *_, entry in off})
    book_prices = sorted({format_decimal(price) for _, _, price, _, _ in off})
    tokens = sum((t for _, t, _, _, _ in off), ZERO)
    charged = sum((c for _, _, _, c, _ in off), ZERO)
    implied = format_decimal((charged / tokens).normalize()) if tokens else "n/a"
    days = f"{off[0][0]} to {off[-1][0]}" if off else "the period"
    detail = (
        f"AWS charged {format_decimal(item.aws_cost)} for {what}; the price book gives "
        f"{format_decimal(item.book_cost_of_aws)}: on {days} AWS's price per token was "
        f"{implied}, the book's {', '.join(book_prices) or 'n/a'} (a stale or missing "
        "dated entry)"
    )
    return Finding("price", item.model, item.usage_type, item.token_type, detail,
                   "; ".join(entries) or None, gap)  # fmt: skip


# ---- The inverse: CUR-shaped line items for what the proxy served (the sandbox's bill)

_REGION_CODES = {"us-east-1": "USE1", "us-east-2": "USE2", "us-west-2": "USW2",
                 "eu-west-1": "EU", "eu-central-1": "EUC1", "ap-northeast-1": "APN1"}  # fmt: skip
_TOKEN_SUFFIX = {
    "input": "input-tokens",
    "output": "output-tokens",
    "cache_read": "cache-read-input-token-count",
    "cache_write": "cache-write-input-token-count",
    "cache_write_1h": "cache-write-input-token-count-1h",
}


def usage_type_name(region: str, model_name: str, label: str, token_type: str) -> str:
    """A Bedrock-style usage type: ``USE1-Claude3Haiku[-global][-priority]-input-tokens``."""
    code = _REGION_CODES.get(region, "USE1")
    model_part = "".join(w for w in model_name.replace(".", " ").split() if w.isalnum())
    parts = [code, model_part, *(label.split("-") if label else []), _TOKEN_SUFFIX[token_type]]
    return "-".join(parts)


def line_items_for(
    book: PriceBook,
    period: Period,
    proxy_rows: Iterable[Mapping],
    *,
    final: bool,
    region: str = "us-east-1",
) -> list[dict]:
    """One CUR 2.0 usage line item per day, model, usage type and token type the proxy
    served, costed at the book's price of that day (unpriced usage is billed at 0 and
    flagged by reconcile). ``final``: every line carries an invoice id, as a closed bill."""
    items = []
    start = f"{period.first_day.isoformat()} 00:00:00"
    end = f"{period.end.date().isoformat()} 00:00:00"
    for row in proxy_rows:
        day = date.fromisoformat(str(row["day"]))
        label = variant_label(str(row["service_tier"]), str(row["inference_scope"]))
        model = str(row["model"])
        for token_type, column in TOKEN_COLUMNS.items():
            tokens = int(row[column] or 0)
            if not tokens:
                continue
            price = cost_price(book, model, day, label, token_type).price or ZERO
            items.append({
                "bill_billing_period_start_date": start,
                "bill_billing_period_end_date": end,
                "bill_invoice_id": f"SANDBOX-{period}" if final else "",
                "line_item_product_code": "AmazonBedrock",
                "line_item_usage_type": usage_type_name(
                    region, book.model_name(model), label, token_type),
                "line_item_usage_start_date": f"{day.isoformat()} 00:00:00",
                "line_item_usage_amount": tokens,
                "line_item_unblended_cost": tokens * price,
                "pricing_unit": "tokens",
                "product_region_code": region,
                "product_name": f"{book.model_name(model)} (Amazon Bedrock Edition)",
            })  # fmt: skip
    return items


__all__ = [
    "BillCheck",
    "BillLine",
    "DEFAULT_TOLERANCE",
    "Finding",
    "check_bill",
    "line_items_for",
    "usage_type_name",
]
