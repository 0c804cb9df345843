"""Invoice numbers: derived from the customer and the period, so they are stable (a re-run or
a second cron host derives the same number), and read back into (period, revision) so the
customer portal can find an invoice by its number under the caller's own key only."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .timeutil import Period

_NUMBER = re.compile(r"BB-([0-9]{4})([0-9]{2})-([0-9A-F]{12})(?:-R([1-9][0-9]{0,3}))?")


def customer_part(customer_id: str) -> str:
    """The 12 hex digits of the customer id an invoice number carries."""
    return customer_id.replace("-", "")[:12].upper()


def invoice_number(customer_id: str, period: Period, revision: int = 1) -> str:
    """Stable: the same customer, period and revision always get the same number."""
    number = f"BB-{period.year:04d}{period.month:02d}-{customer_part(customer_id)}"
    return number if revision == 1 else f"{number}-R{revision}"


@dataclass(frozen=True)
class InvoiceRef:
    period: Period
    revision: int
    customer_part: str


def parse_invoice_number(text: str) -> InvoiceRef | None:
    """(period, revision, customer digits) of a well-formed number; None for anything else
    (a revision is written from 2 on: ``-R1`` is not a number this tool issues)."""
    found = _NUMBER.fullmatch(text)
    if found is None:
        return None
    year, month, part, revision = found.groups()
    if not 1 <= int(month) <= 12 or revision == "1":
        return None
    return InvoiceRef(Period(int(year), int(month)), int(revision or 1), part)
