"""Revenue, AWS cost and margin per model for one customer's period.

Revenue of a line for one model goes to that model. A line across all models (``*``) is
shared among the models in proportion to their quantity of the line's metric, in whole
cents by largest remainder, so the shares add up to the line. Base fee, true-up and
discounts are plan-level (model None); credits are a means of payment, not a price cut,
so they do not lower revenue. Cost is priced per day with the cost in force that day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ..money import ZERO, format_money, round_half_up
from ..usage import TOKEN_METRICS
from .book import PriceBook
from .charges import ALL_MODELS, TokenPrices
from .rating import USAGE, Line, quantity

_TOKEN_INDEXES = tuple(range(1, 5))


@dataclass(frozen=True)
class ModelMargin:
    model: str | None  # None: plan-level revenue (base fee, true-up, discounts)
    revenue: Decimal
    cost: Decimal
    cost_known: bool = True  # False when some usage has no cost price in the book

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "revenue": format_money(self.revenue),
            "cost": format_money(self.cost),
            "margin": format_money(self.margin),
            "cost_known": self.cost_known,
        }


def allocate(amount: Decimal, weights: Mapping[str, int]) -> dict[str, Decimal]:
    """Split a cent amount by integer weights; the parts are whole cents summing to it."""
    total_weight = sum(weights.values())
    cents = int(amount * 100)
    if total_weight == 0:
        return {}
    shares = {key: cents * w // total_weight for key, w in weights.items()}
    left = cents - sum(shares.values())
    by_remainder = sorted(weights, key=lambda k: (-(cents * weights[k] % total_weight), k))
    for key in by_remainder[:left]:
        shares[key] += 1
    return {key: Decimal(c) / 100 for key, c in shares.items()}


def margins(
    book: PriceBook,
    lines: list[Line],
    totals: Mapping[str, list[int]],
    by_day: Mapping[tuple[str, date], list[int]],
    discount_total: Decimal,
) -> tuple[ModelMargin, ...]:
    revenue: dict[str | None, Decimal] = {model: ZERO for model in totals}
    plan_level = -discount_total
    for line in lines:
        if line.kind != USAGE:  # base fee and true-up (included lines are 0.00)
            plan_level += line.amount
            continue
        if not line.amount:
            continue
        if line.model == ALL_MODELS:
            weights = {m: quantity(totals, m, line.metric) for m in totals}
            for model, share in allocate(line.amount, weights).items():
                revenue[model] += share
        else:
            revenue[line.model] = revenue.get(line.model, ZERO) + line.amount

    # Days priced alike are summed first, so each (model, cost price) is multiplied once.
    grouped: dict[tuple[str, int], tuple[TokenPrices | None, list[int]]] = {}
    for (model, day), counts in by_day.items():
        prices = book.cost_price(model, day)
        key = (model, id(prices))
        entry = grouped.get(key)
        if entry is None:
            grouped[key] = (prices, list(counts))
        else:
            acc = entry[1]
            for i in _TOKEN_INDEXES:
                acc[i] += counts[i]
    cost: dict[str, Decimal] = {}
    known: dict[str, bool] = {}
    for (model, _), (prices, counts) in grouped.items():
        exact = cost.get(model, ZERO)
        for i, metric in zip(_TOKEN_INDEXES, TOKEN_METRICS, strict=True):
            if not counts[i]:
                continue
            price = None if prices is None else prices.for_metric(metric)
            if price is None:
                known[model] = False
            else:
                exact += counts[i] * price
        cost[model] = exact
    rows = [
        ModelMargin(
            model, revenue[model], round_half_up(cost.get(model, ZERO)), known.get(model, True)
        )
        for model in sorted(m for m in revenue if m is not None)
    ]
    if plan_level:
        rows.append(ModelMargin(None, plan_level, ZERO))
    return tuple(rows)
