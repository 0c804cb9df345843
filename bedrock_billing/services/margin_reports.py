"""``report margin``: revenue per customer and model from the period's invoices (the issued
one where there is one, else the draft), AWS cost from the price book or, with
``against="cur"``, from AWS's bill (core/pricing/margin_report.py does the arithmetic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..core.errors import InvalidInput
from ..core.pricing.margin_report import margin_rows
from ..core.timeutil import Clock, Period, iso_z, system_clock
from ..stores.customers import CustomerStore
from ..stores.invoices import InvoiceStore
from ..stores.usage_counters import CounterStore
from .invoices import price_customer
from .pricebook import load_book


@dataclass
class MarginReport:
    period: str
    against: str  # book | cur
    generated_at: datetime
    rows: list
    totals: dict[str, Any]
    invoices: list[dict[str, str]]
    final: bool | None = None  # with the CUR: whether AWS has closed the bill
    warnings: list[str] = field(default_factory=list)

    def csv_rows(self) -> list[dict]:
        return [row.to_dict() for row in self.rows]

    def to_dict(self) -> dict:
        return {
            "period": self.period,
            "against": self.against,
            "generated_at": iso_z(self.generated_at),
            "bill_final": self.final,
            "rows": self.csv_rows(),
            "invoices": self.invoices,
            "totals": self.totals,
            "warnings": list(self.warnings),
        }


def _invoices(settings, period: Period, price_book: str | None) -> list[dict]:
    book = load_book(settings, price_book)
    client = settings.client("dynamodb")
    customers = sorted(CustomerStore(client, settings.tables).scan(),
                       key=lambda c: c["customer_id"])  # fmt: skip
    counters = CounterStore(client, settings.tables.usage)
    store = InvoiceStore(client, settings.tables.invoices)
    docs = []
    for customer in customers:
        issued = store.get_invoice(customer["customer_id"], str(period))
        doc = issued or price_customer(customer, period, book, counters, store)
        if issued is None and not doc.pop("has_usage", True) and doc["total"] == "0.00":
            continue  # an idle customer: no invoice, no row
        docs.append(doc)
    return docs


def margin_report(
    settings,
    *,
    period: str | None,
    against: str | None = None,
    price_book: str | None = None,
    cur_table: str | None = None,
    cur_s3: str | None = None,
    clock: Clock = system_clock,
) -> MarginReport:
    if not period:
        raise InvalidInput("give --period YYYY-MM")
    if against not in (None, "book", "cur"):
        raise InvalidInput(f"invalid --against {against!r}: choose cur (or leave it out)")
    chosen = Period.parse(period)
    docs = _invoices(settings, chosen, price_book)
    cur_costs, final, warnings = None, None, []
    if against == "cur":
        from .cur_sources import reconcile_cur

        bill = reconcile_cur(settings, period=period, price_book=price_book,
                             cur_table=cur_table, cur_s3=cur_s3, clock=clock)  # fmt: skip
        final, warnings = bill.check.final, list(bill.warnings)
        if bill.check.line_items:
            cur_costs = {}
            for line in bill.check.lines:
                cur_costs[line.model] = cur_costs.get(line.model, 0) + line.aws_cost
        else:
            warnings.append("AWS's bill is not in yet: costs are the price book's")
    rows, totals = margin_rows(docs, cur_costs)
    return MarginReport(
        period=str(chosen),
        against="cur" if cur_costs is not None else "book",
        generated_at=clock(),
        rows=rows,
        totals=totals,
        invoices=[
            {"customer_id": d["customer_id"], "invoice_number": d["invoice_number"],
             "status": d["status"], "total": d["total"]}
            for d in docs
        ],  # fmt: skip
        final=final,
        warnings=warnings,
    )
