"""Read-only views that combine the other services for one screen: the customer table with
each row's month-to-date usage and spend against its limits, one customer's daily usage
this period against the previous one, usage across customers, a period's invoices.

The web console (``bedrock_billing.console``) renders these; a script can call them too.
They add no rule of their own: usage comes from the counters (``report_usage``), spend is
the draft invoice the ``invoice`` command would print (``price_customer``), invoices are
what ``invoice`` and ``void-invoice`` stored.

Costs: the customer table reads the customers table (one Scan, as ``list`` does) and, for
the rows of the page shown only, one counter Query and one grants Query per customer.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from ..core.errors import InvalidInput
from ..core.money import format_money
from ..core.timeutil import Clock, Period, system_clock
from ..core.usage import totals, with_total_tokens, zero_counts
from ..stores.customers import CustomerStore
from ..stores.invoices import InvoiceStore
from ..stores.usage_counters import CounterStore
from .customers import list_customers, require_customer
from .invoices import price_customer, run_invoices
from .pricebook import load_book
from .usage_sources import reconcile_usage, report_usage

SORT_KEYS = ("name", "email", "status", "plan", "created_at")
MAX_PER_PAGE = 200


def _period(period: str | None, clock: Clock) -> Period:
    return Period.parse(period) if period else Period.of(clock())


def _to_date(period: Period, clock: Clock) -> date:
    """The last day of ``period`` that has begun: today for the running month."""
    return min(period.last_day, clock().date())


def _matches(row: dict[str, Any], text: str) -> bool:
    text = text.casefold()
    return any(text in (row.get(k) or "").casefold() for k in ("name", "email", "customer_id"))


def customer_table(
    settings,
    *,
    search: str | None = None,
    status: str | None = None,
    plan: str | None = None,
    sort: str = "name",
    descending: bool = False,
    page: int = 1,
    per_page: int = 25,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """One page of the customers matching ``search`` (name, email or id, case-insensitive),
    ``status`` and ``plan``, sorted over the whole table; each row of the page carries its
    month-to-date requests, tokens and spend (the draft invoice's total) with its limits."""
    if sort not in SORT_KEYS:
        raise InvalidInput(f"invalid sort {sort!r}: choose one of {', '.join(SORT_KEYS)}")
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput(f"page must be positive and per_page between 1 and {MAX_PER_PAGE}")
    rows = list_customers(settings, status=status or None, clock=clock)
    plans = sorted({r["plan"] for r in rows if r.get("plan")})
    if search and search.strip():
        rows = [r for r in rows if _matches(r, search.strip())]
    if plan:
        rows = [r for r in rows if (r.get("plan") or "") == plan]
    rows.sort(key=lambda r: ((r.get(sort) or "").casefold(), r["customer_id"]), reverse=descending)
    pages = max(1, -(-len(rows) // per_page))
    shown = rows[(page - 1) * per_page : page * per_page]
    current = Period.of(clock())
    _add_month_to_date(settings, shown, current, clock)
    return {
        "customers": shown,
        "count": len(shown),
        "total": len(rows),
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "plans": plans,
        "period": str(current),
    }


def _add_month_to_date(settings, rows: list[dict[str, Any]], period: Period, clock) -> None:
    if not rows:
        return
    client = settings.client("dynamodb")
    counters = CounterStore(client, settings.tables.usage)
    invoices = InvoiceStore(client, settings.tables.invoices)
    customers = CustomerStore(client, settings.tables)
    book = load_book(settings)
    last = _to_date(period, clock)
    for row in rows:
        counts = with_total_tokens(
            totals(counters.read_customer(row["customer_id"], period.first_day, last))
        )
        item = customers.get(row["customer_id"])
        doc = price_customer(item, period, book, counters, invoices)
        row["month_to_date"] = {
            "requests": counts["requests"],
            "total_tokens": counts["total_tokens"],
            "spend": doc["total"],
            "currency": doc["currency"],
        }


def _by_day_and_model(report) -> dict[str, Any]:
    days = [d.isoformat() for d, _ in report.daily]
    models = sorted({row.model for row in report.rows if row.model})
    series = {m: [0] * len(days) for m in models}
    index = {d: i for i, d in enumerate(days)}
    for row in report.rows:
        if row.model and row.day is not None:
            series[row.model][index[row.day.isoformat()]] += row.counts["requests"]
    tokens = {m: 0 for m in models}
    for row in report.rows:
        if row.model:
            tokens[row.model] += with_total_tokens(row.counts)["total_tokens"]
    return {
        "days": days,
        "requests_by_model": series,
        "tokens_by_model": tokens,
        "totals": with_total_tokens(report.totals),
    }


def customer_usage(
    settings, customer_id: str, *, period: str | None = None, clock: Clock = system_clock
) -> dict[str, Any]:
    """One customer's requests per day stacked by model, for ``period`` (default: this month)
    and the previous period, from the counters (as ``usage --group-by day,model``)."""
    chosen = _period(period, clock)
    out: dict[str, Any] = {"period": str(chosen), "previous_period": str(chosen.previous())}
    for key, p in (("current", chosen), ("previous", chosen.previous())):
        if p.first_day > clock().date():
            out[key] = {"days": [], "requests_by_model": {}, "tokens_by_model": {},
                        "totals": with_total_tokens(zero_counts())}  # fmt: skip
            continue
        report = report_usage(
            settings, customer_id=customer_id, start_date=p.first_day.isoformat(),
            end_date=_to_date(p, clock).isoformat(), group_by="day,model", clock=clock,
        )  # fmt: skip
        out[key] = _by_day_and_model(report)
    return out


def usage_overview(
    settings, *, period: str | None = None, top: int = 10, clock: Clock = system_clock
) -> dict[str, Any]:
    """Usage across customers for ``period``: the top customers by requests, totals per
    model, and requests per day stacked by model (the counters, as ``usage --all``)."""
    chosen = _period(period, clock)
    if chosen.first_day > clock().date():
        raise InvalidInput(f"period {chosen} has not started")
    report = report_usage(
        settings, all_customers=True, start_date=chosen.first_day.isoformat(),
        end_date=_to_date(chosen, clock).isoformat(), group_by="day,model", clock=clock,
    )  # fmt: skip
    data = report.to_dict()
    customers = sorted(
        (c for c in data["customers"] if c["requests"] or c["total_tokens"]),
        key=lambda c: (-c["requests"], -c["total_tokens"], c["customer_id"]),
    )
    per_model: dict[str, dict[str, int]] = {}
    for row in report.rows:
        if row.model:
            bucket = per_model.setdefault(row.model, {})
            for name, value in with_total_tokens(row.counts).items():
                bucket[name] = bucket.get(name, 0) + value
    return {
        "period": str(chosen),
        "start_date": data["start_date"],
        "end_date": data["end_date"],
        "top_customers": customers[:top],
        "models": [{"model": m, **c} for m, c in sorted(per_model.items())],
        "chart": _by_day_and_model(report),
        "totals": data["totals"],
        "warnings": data["warnings"],
    }


def reconcile_status(
    settings, *, period: str | None = None, clock: Clock = system_clock
) -> dict[str, Any]:
    """The counters against the usage log for ``period`` (as ``reconcile --period``): one
    log query (Athena, or the local engine in the sandbox), so the console runs it on demand."""
    chosen = _period(period, clock)
    report = reconcile_usage(
        settings, start_date=chosen.first_day.isoformat(),
        end_date=_to_date(chosen, clock).isoformat(), clock=clock,
    )  # fmt: skip
    data = report.to_dict()
    data["agrees"] = not report.differences
    return data


def customer_invoices(settings, customer_id: str) -> dict[str, Any]:
    """A customer's issued invoices (every revision, newest period first) and credit notes;
    an invoice a credit note voids says so."""
    item = require_customer(settings, customer_id)
    cid = item["customer_id"]
    store = InvoiceStore(settings.client("dynamodb"), settings.tables.invoices)
    notes = store.list_credit_notes(cid)
    voided = {(n["period"], n["revision"]) for n in notes}
    rows = [
        {
            "invoice_number": d["invoice_number"],
            "period": d["period"],
            "revision": d.get("revision", 1),
            "status": "void" if (d["period"], d.get("revision", 1)) in voided else d["status"],
            "issued_at": d.get("issued_at"),
            "total": d["total"],
            "currency": d["currency"],
        }
        for d in store.list_invoices(cid)
    ]
    rows.sort(key=lambda r: (r["period"], r["revision"]), reverse=True)
    return {"customer_id": cid, "invoices": rows, "credit_notes": notes}


def issued_invoice(settings, customer_id: str, period: str, revision: int | None = None):
    """One issued invoice document (the latest revision unless ``revision``), or None."""
    item = require_customer(settings, customer_id)
    chosen = str(Period.parse(period))
    store = InvoiceStore(settings.client("dynamodb"), settings.tables.invoices)
    docs = [d for d in store.list_invoices(item["customer_id"]) if d["period"] == chosen]
    if revision is not None:
        docs = [d for d in docs if d.get("revision", 1) == revision]
    return max(docs, key=lambda d: d.get("revision", 1)) if docs else None


def period_invoices(
    settings, *, period: str | None = None, clock: Clock = system_clock
) -> dict[str, Any]:
    """A period's invoices for every customer: each customer's issued invoice in force (or
    voided), else its draft as ``invoice --all`` prices it (nothing written)."""
    chosen = _period(period, clock)
    run = run_invoices(settings, period=str(chosen), all_customers=True, clock=clock)
    store = InvoiceStore(settings.client("dynamodb"), settings.tables.invoices)
    rows = []
    for doc in run.invoices:
        cid = doc["customer_id"]
        latest, revision, voided = store.period_state(cid, str(chosen))
        shown = latest if latest is not None else doc
        rows.append(
            {
                "customer_id": cid,
                "customer_name": doc.get("customer_name"),
                "invoice_number": shown["invoice_number"],
                "status": "void" if voided else shown["status"],
                "revision": revision or None,
                "total": shown["total"],
                "currency": shown["currency"],
                "draft_total": doc["total"],
                "issued_at": shown.get("issued_at"),
            }
        )
    rows.sort(key=lambda r: ((r["customer_name"] or "").casefold(), r["customer_id"]))
    billed = sum((Decimal(r["total"]) for r in rows if r["status"] == "issued"), Decimal(0))
    return {
        "period": str(chosen),
        "settles": run_settles(chosen),
        "invoices": rows,
        "failures": run.failures,
        "issued_total": format_money(billed),
    }


def run_settles(period: Period) -> str:
    """When ``invoice --finalize`` (default settling window) accepts the period."""
    from ..core.timeutil import iso_z, parse_duration
    from .invoices import DEFAULT_SETTLE

    return iso_z(period.end + parse_duration(DEFAULT_SETTLE))
