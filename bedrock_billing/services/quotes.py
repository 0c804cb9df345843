"""Quotes and the proxy's price export: pricing without touching AWS."""

from __future__ import annotations

from typing import Any

from ..core.errors import InvalidInput
from ..core.pricing import export_prices, quote, read_grants_file, read_usage_file, usage_from_flags
from ..core.timeutil import Clock, Period, system_clock
from .pricebook import load_book


def make_quote(
    settings,
    *,
    plan: str | None,
    price_book: str | None,
    period: str | None,
    model: str | None,
    counts: tuple[int, int, int, int, int],
    usage_file: str | None,
    credits_file: str | None,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """Price a hypothetical month from flags or a usage file, with optional credit grants."""
    if usage_file and model:
        raise InvalidInput("give either --usage FILE or --model with counts, not both")
    if not usage_file and not model:
        raise InvalidInput("give --usage FILE, or --model M with --requests/--input-tokens/...")
    book = load_book(settings, price_book)
    if usage_file:
        rows = read_usage_file(usage_file)
        chosen = Period.parse(period) if period else None
    else:
        chosen = Period.parse(period) if period else Period.of(clock())
        rows = usage_from_flags(chosen, model, *counts)
    grants = read_grants_file(credits_file) if credits_file else ()
    draft = quote(book.book, rows, period=chosen, plan=plan, grants=grants)
    doc = draft.to_dict()
    doc.update(
        invoice_number="QUOTE",
        status="quote",
        issued_at=None,
        price_book=book.source,
        price_book_hash=book.sha256,
    )
    return doc


def export_proxy_prices(
    settings,
    *,
    price_book: str | None = None,
    plan: str | None = None,
    period: str | None = None,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    book = load_book(settings, price_book)
    chosen = Period.parse(period) if period else Period.of(clock())
    return export_prices(book.book, chosen, plan=plan)
