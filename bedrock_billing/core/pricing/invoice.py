"""Rating a period: usage rows -> an invoice draft (lines, true-up, discounts, credits).

The order is the one in docs/pricing.md: subtotal of rounded lines, minimum-commitment
true-up, fixed then percentage discounts, prepaid credits, total. All amounts after the
lines are whole cents, so lines + true-up - discounts - credits equal the total exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext

from ..errors import BillingError, InvalidInput
from ..money import PRICING_CONTEXT, ZERO, format_decimal, format_money, round_half_up
from ..timeutil import Period
from ..usage import METRICS, UsageRow
from .book import PriceBook
from .charges import Discount
from .credits import CreditGrant, CreditResult, apply_credits
from .margin import ModelMargin, margins
from .overrides import CustomerOverrides
from .rating import TRUE_UP, Line, Rater, make_line, priced_metrics

__all__ = ["CustomerOverrides", "InvoiceDraft", "Line", "AppliedDiscount", "rate_period"]


@dataclass(frozen=True)
class AppliedDiscount:
    name: str
    kind: str
    value: Decimal
    amount: Decimal

    def to_dict(self) -> dict:
        value = format_money(self.value) if self.kind == "fixed" else format_decimal(self.value)
        return {
            "name": self.name,
            "type": self.kind,
            "value": value,
            "amount": format_money(self.amount),
        }


@dataclass(frozen=True)
class InvoiceDraft:
    customer_id: str | None
    period: Period
    plan: str
    currency: str
    lines: tuple[Line, ...]  # charge lines, then the true-up line when there is one
    subtotal: Decimal  # sum of the rounded charge lines (base fee included)
    minimum: Decimal | None
    true_up: Decimal
    discounts: tuple[AppliedDiscount, ...]
    discount_total: Decimal
    credits: CreditResult
    total: Decimal
    usage: dict[str, tuple[int, ...]]  # model -> counts in METRICS order
    unpriced: tuple[tuple[str, str, int], ...]  # (model, metric, quantity)
    margins: tuple[ModelMargin, ...]

    @property
    def credit_total(self) -> Decimal:
        return self.credits.applied

    def to_dict(self) -> dict:
        revenue = sum((m.revenue for m in self.margins), ZERO)
        cost = sum((m.cost for m in self.margins), ZERO)
        return {
            "customer_id": self.customer_id,
            "period": str(self.period),
            "plan": self.plan,
            "currency": self.currency,
            "lines": [line.to_dict() for line in self.lines],
            "subtotal": format_money(self.subtotal),
            "minimum": None if self.minimum is None else format_money(self.minimum),
            "true_up": format_money(self.true_up),
            "discounts": [d.to_dict() for d in self.discounts],
            "discount_total": format_money(self.discount_total),
            "credits": [a.to_dict() for a in self.credits.applications],
            "credit_total": format_money(self.credit_total),
            "total": format_money(self.total),
            "usage": [
                {"model": model} | dict(zip(METRICS, counts, strict=True))
                for model, counts in sorted(self.usage.items())
            ],
            "unpriced": [
                {"model": model, "metric": metric, "quantity": qty}
                for model, metric, qty in self.unpriced
            ],
            "margin": {
                "models": [m.to_dict() for m in self.margins],
                "revenue": format_money(revenue),
                "cost": format_money(cost),
                "margin": format_money(revenue - cost),
            },
        }


def aggregate(rows: Iterable[UsageRow], period: Period):
    """Per (model, day) and per model totals; rows outside the period are refused."""
    first, last = period.first_day, period.last_day
    by_day: dict[tuple[str, date], list[int]] = {}
    for row in rows:
        if not first <= row.day <= last:
            raise InvalidInput(f"usage row for {row.day} ({row.model}) is outside period {period}")
        counts = row.counts()
        if min(counts) < 0:
            raise InvalidInput(f"usage row for {row.day} ({row.model}) has a negative count")
        key = (row.model, row.day)
        acc = by_day.get(key)
        if acc is None:
            by_day[key] = list(counts)
        else:
            for i in range(5):
                acc[i] += counts[i]
    totals: dict[str, list[int]] = {}
    for (model, _), counts in by_day.items():
        acc = totals.setdefault(model, [0] * 5)
        for i in range(5):
            acc[i] += counts[i]
    return by_day, totals


def _apply_discounts(amount: Decimal, discounts: Iterable[Discount]):
    """Fixed amounts first (each capped at what is left), then percentages in order, each
    rounded half-up to the cent on the amount left after the previous ones."""
    applied = []
    ordered = [d for d in discounts if d.kind == "fixed"] + [
        d for d in discounts if d.kind == "percent"
    ]
    for discount in ordered:
        if discount.kind == "fixed":
            cut = min(discount.value, amount)
        else:
            cut = min(round_half_up(amount * discount.value / 100), amount)
        amount -= cut
        applied.append(AppliedDiscount(discount.name, discount.kind, discount.value, cut))
    return tuple(applied), amount


def rate_period(
    book: PriceBook,
    period: Period | str,
    rows: Iterable[UsageRow],
    *,
    plan: str | None = None,
    overrides: CustomerOverrides | None = None,
    grants: Iterable[CreditGrant] = (),
    customer_id: str | None = None,
) -> InvoiceDraft:
    """Price one customer's period: ``rows`` are that period's daily usage rows.

    ``plan`` is the plan name in force (``plan_in_force`` picks it from a history); None
    means the book's default plan. ``grants`` carry their balance before this invoice.
    """
    period = Period.parse(period) if isinstance(period, str) else period
    overrides = overrides or CustomerOverrides()
    with localcontext(PRICING_CONTEXT):
        plan_version = book.plan(plan, period)
        by_day, totals = aggregate(rows, period)
        rater = Rater(
            plan_version,
            totals,
            overrides,
            list_price=lambda model: book.list_price(model, period),
            model_name=book.model_name,
        )
        lines = rater.rate()
        subtotal = sum((line.amount for line in lines), ZERO)
        minimum = overrides.minimum if overrides.minimum is not None else plan_version.minimum
        true_up = ZERO
        if minimum is not None and subtotal < minimum:
            true_up = round_half_up(minimum - subtotal)
            lines.append(
                make_line(
                    TRUE_UP,
                    "minimum",
                    None,
                    f"Minimum commitment {format_money(minimum)} true-up",
                    None,
                    None,
                    1,
                    true_up,
                    true_up,
                )
            )
        discounts, after_discounts = _apply_discounts(
            subtotal + true_up, plan_version.discounts + overrides.discounts
        )
        credits = apply_credits(after_discounts, list(grants), period)
        total = credits.amount_after
        discount_total = sum((d.amount for d in discounts), ZERO)
        line_total = sum((line.amount for line in lines), ZERO)
        if line_total - discount_total - credits.applied != total:
            # The invariant the rules promise; reaching this is a bug, never a rounding choice.
            raise BillingError(f"internal error: invoice for {period} does not add up")

        metrics = priced_metrics(plan_version, overrides)
        unpriced = tuple(
            (model, metric, counts[i])
            for model, counts in sorted(totals.items())
            for i, metric in enumerate(METRICS)
            if counts[i] and metric in metrics and (model, metric) not in rater.covered
        )
        model_margins = margins(book, lines, totals, by_day, discount_total)
    return InvoiceDraft(
        customer_id=customer_id,
        period=period,
        plan=plan_version.name,
        currency=book.currency,
        lines=tuple(lines),
        subtotal=subtotal,
        minimum=minimum,
        true_up=true_up,
        discounts=discounts,
        discount_total=discount_total,
        credits=credits,
        total=total,
        usage={model: tuple(counts) for model, counts in totals.items()},
        unpriced=unpriced,
        margins=model_margins,
    )
