"""The margin report: revenue per customer and model (from the period's invoices, or their
drafts), AWS cost from the price book and, where the bill is in, from the CUR, margin in
money and percent.

Revenue is each invoice's ``margin`` split (lines, true-up and discounts per model; the
plan-level part as its own row), so the rows add up to each invoice's revenue to the cent,
and revenue less credits to its total. A model's CUR cost (rounded half-up to the cent) is
shared among the customers that used it in proportion to their price-book cost, in whole
cents by largest remainder, so the shares add up to AWS's figure; what no customer of the
proxy explains stays on an ``(unattributed)`` row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from ..errors import BillingError
from ..money import ZERO, format_money, round_half_up
from .margin import allocate

PLAN_LEVEL = "(plan)"  # base fee, true-up and discounts: revenue of no one model
UNATTRIBUTED = "(unattributed)"


@dataclass
class MarginRow:
    customer_id: str | None
    customer_name: str | None
    model: str
    revenue: Decimal
    book_cost: Decimal
    cur_cost: Decimal | None = None

    @property
    def cost(self) -> Decimal:
        return self.book_cost if self.cur_cost is None else self.cur_cost

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    def to_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "model": self.model,
            "revenue": format_money(self.revenue),
            "aws_cost": format_money(self.cost),
            "aws_cost_source": "book" if self.cur_cost is None else "cur",
            "book_cost": format_money(self.book_cost),
            "cur_cost": None if self.cur_cost is None else format_money(self.cur_cost),
            "margin": format_money(self.margin),
            "margin_percent": percent(self.margin, self.revenue),
        }


def percent(part: Decimal, whole: Decimal) -> str | None:
    if not whole:
        return None
    value = (part * 100 / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{value:.1f}"


def margin_rows(
    invoices: Iterable[Mapping],
    cur_costs: Mapping[str, Decimal] | None = None,
) -> tuple[list[MarginRow], dict]:
    """Rows per customer and model, sorted by margin (largest first), and the totals.

    ``invoices``: invoice documents (issued, or drafts) with their ``margin`` section.
    ``cur_costs``: AWS's cost per model from the CUR, or None to use the book's."""
    rows: list[MarginRow] = []
    revenue_total = credits = invoiced = ZERO
    for doc in invoices:
        cid, name = doc["customer_id"], doc.get("customer_name")
        doc_revenue = ZERO
        for item in doc.get("margin", {}).get("models", []):
            revenue, cost = Decimal(item["revenue"]), Decimal(item["cost"])
            rows.append(MarginRow(cid, name, item["model"] or PLAN_LEVEL, revenue, cost))
            doc_revenue += revenue
        credit = Decimal(doc.get("credit_total", "0"))
        if doc_revenue - credit != Decimal(doc["total"]):
            # The invariant the invoice promises; reaching this is a bug, never rounding.
            raise BillingError(f"internal error: margin of {doc['invoice_number']} does not add up")
        revenue_total += doc_revenue
        credits += credit
        invoiced += Decimal(doc["total"])
    if cur_costs is not None:
        _attribute(rows, cur_costs)
    rows.sort(key=lambda r: (-r.margin, r.customer_id or "~", r.model))
    cost = sum((r.cost for r in rows), ZERO)
    totals = {
        "revenue": format_money(revenue_total),
        "credits": format_money(credits),
        "invoiced": format_money(invoiced),
        "book_cost": format_money(sum((r.book_cost for r in rows), ZERO)),
        "aws_cost": format_money(cost),
        "margin": format_money(revenue_total - cost),
        "margin_percent": percent(revenue_total - cost, revenue_total),
    }
    return rows, totals


def _attribute(rows: list[MarginRow], cur_costs: Mapping[str, Decimal]) -> None:
    by_model: dict[str, list[MarginRow]] = {}
    for row in rows:
        if row.model != PLAN_LEVEL:
            by_model.setdefault(row.model, []).append(row)
    for row in rows:
        row.cur_cost = ZERO
    for model, amount in sorted(cur_costs.items()):
        amount = round_half_up(amount)
        users = by_model.get(model, [])
        weights = {str(i): int(r.book_cost * 100) for i, r in enumerate(users)}
        if not any(weights.values()):
            weights = dict.fromkeys(weights, 1)
        shares = allocate(amount, weights) if users else {}
        for i, share in shares.items():
            users[int(i)].cur_cost = share
        if not users and amount:
            rows.append(MarginRow(None, UNATTRIBUTED, model, ZERO, ZERO, amount))


__all__ = ["PLAN_LEVEL", "UNATTRIBUTED", "MarginRow", "margin_rows", "percent"]
