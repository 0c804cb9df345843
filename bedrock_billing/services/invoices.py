"""Invoices: price each customer's period from the counters, and issue it exactly once.

``run_invoices`` is what ``invoice`` (and cron) calls: drafts by default, ``finalize`` to
issue. One customer's failure does not stop the others; the run says which failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from ..core.errors import BillingError, Conflict, InvalidInput, NotFound
from ..core.invoice_numbers import invoice_number
from ..core.money import format_money, to_cents, to_money
from ..core.pricing import (
    CreditGrant,
    CustomerOverrides,
    plan_in_force,
    rate_period,
)
from ..core.timeutil import Clock, Period, iso_z, parse_date, parse_duration, system_clock
from ..stores.customers import CustomerStore
from ..stores.invoices import InvoiceExists, InvoiceStore
from ..stores.usage_counters import CounterStore
from .customers import require_customer, resolve_customer_id
from .pricebook import PriceBookRef, load_book

Progress = Callable[[int, int], None]
DEFAULT_SETTLE = "24h"  # late log lines and counter retries settle within this after month end


def _grants(rows: list[dict[str, Any]]) -> list[CreditGrant]:
    return [
        CreditGrant(
            id=r["grant_id"],
            amount=Decimal(r["amount"]),
            remaining=Decimal(r["remaining"]),
            effective=date.fromisoformat(r["effective"]),
            expires=date.fromisoformat(r["expires"]) if r.get("expires") else None,
            priority=int(r.get("priority", 0)),
        )
        for r in rows
    ]


@dataclass
class InvoiceRun:
    period: str
    finalize: bool
    invoices: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    no_usage: list[str] = field(default_factory=list)
    unpriced: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def summary(self) -> dict[str, Any]:
        totals = [Decimal(i["total"]) for i in self.invoices]
        margin = [i.get("margin", {}) for i in self.invoices]
        revenue = sum((Decimal(m.get("revenue", "0")) for m in margin), Decimal(0))
        cost = sum((Decimal(m.get("cost", "0")) for m in margin), Decimal(0))
        count = lambda kind: sum(1 for o in self.outcomes if o["outcome"] == kind)  # noqa: E731
        return {
            "invoices": len(self.invoices),
            "issued": count("issued"),
            "existing": count("existing"),
            "drafts": count("draft"),
            "total_billed": format_money(sum(totals, Decimal(0))),
            "revenue": format_money(revenue),
            "aws_cost": format_money(cost),
            "margin": format_money(revenue - cost),
            "customers_without_usage": len(self.no_usage),
            "failures": len(self.failures),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "finalize": self.finalize,
            "invoices": self.invoices,
            "outcomes": self.outcomes,
            "failures": self.failures,
            "customers_without_usage": self.no_usage,
            "unpriced": self.unpriced,
            "summary": self.summary(),
        }


def _check_settled(period: Period, now, settle: str, force: bool) -> None:
    if period.start > now:
        raise InvalidInput(f"period {period} has not started")
    settled_at = period.end + parse_duration(settle)
    if now < settled_at and not force:
        raise Conflict(
            f"period {period} settles at {iso_z(settled_at)}: finalizing earlier could miss "
            "late usage; wait, or pass --force"
        )


def price_customer(
    customer: dict[str, Any],
    period: Period,
    book: PriceBookRef,
    counters: CounterStore,
    store: InvoiceStore,
) -> dict[str, Any]:
    """The draft invoice document of one customer for ``period`` (nothing written)."""
    cid = customer["customer_id"]
    rows = counters.read_customer(cid, period.first_day, period.last_day)
    plan = plan_in_force(customer.get("plan_history") or [], period) or customer.get("plan")
    overrides = customer.get("pricing_overrides")
    draft = rate_period(
        book.book,
        period,
        rows,
        plan=plan,
        overrides=CustomerOverrides.from_dict(overrides) if overrides else None,
        grants=_grants(store.grants(cid)),
        customer_id=cid,
    )
    doc = draft.to_dict()
    doc.update(
        invoice_number=invoice_number(cid, period),
        status="draft",
        issued_at=None,
        customer_name=customer.get("name"),
        customer_email=customer.get("email"),
        price_book=book.source,
        price_book_hash=book.sha256,
        total_cents=to_cents(draft.total),
        has_usage=any(r.requests or r.total_tokens for r in rows),
    )
    return doc


def run_invoices(
    settings,
    *,
    period: str | None = None,
    customer_id: str | None = None,
    all_customers: bool = False,
    finalize: bool = False,
    force: bool = False,
    settle: str = DEFAULT_SETTLE,
    price_book: str | None = None,
    progress: Progress | None = None,
    clock: Clock = system_clock,
    allow_unpriced: bool = False,
) -> InvoiceRun:
    """Draft (or, with ``finalize``, issue) the period's invoices for one or all customers.

    A customer whose usage the plan does not price is not issued (its failure names the
    models) unless ``allow_unpriced``: that usage would be billed 0.00 for good."""
    if bool(customer_id) == bool(all_customers):
        raise InvalidInput("give --customer-id ID or --all")
    now = clock()
    chosen = Period.parse(period) if period else Period.of(now).previous()
    if finalize:
        _check_settled(chosen, now, settle, force)
    book = load_book(settings, price_book)
    client = settings.client("dynamodb")
    customers_store = CustomerStore(client, settings.tables)
    counters = CounterStore(client, settings.tables.usage)
    store = InvoiceStore(client, settings.tables.invoices)
    if customer_id:
        customers = [customers_store.get(resolve_customer_id(settings, customer_id))]
    else:
        customers = sorted(customers_store.scan(), key=lambda c: c["customer_id"])
    run = InvoiceRun(period=str(chosen), finalize=finalize)
    for index, customer in enumerate(customers, 1):
        cid = customer["customer_id"]
        try:
            _one(run, customer, chosen, book, counters, store, finalize, now, allow_unpriced)
        except BillingError as exc:
            if customer_id:
                raise
            run.failures.append({"customer_id": cid, "error": exc.message})
        except Exception as exc:  # AWS trouble with one customer must not stop the run
            if customer_id:
                raise
            from ..awsclient import aws_error

            err = aws_error(exc)
            message = err.message if err else f"unexpected {type(exc).__name__}"
            run.failures.append({"customer_id": cid, "error": message})
        if progress:
            progress(index, len(customers))
    if finalize:
        _announce(settings, run)
    return run


def _announce(settings, run: InvoiceRun) -> None:
    """``invoice.finalized`` for each invoice this run issued, to the stage's alerts topic
    and the customer's webhook where there is one. A failure is reported with the run's
    failures."""
    from .notifications import announce_invoice, check_credits_low

    for doc, outcome in zip(run.invoices, run.outcomes, strict=False):
        if outcome.get("outcome") != "issued":
            continue
        try:
            announce_invoice(settings, doc)
            if Decimal(doc.get("credit_total") or 0) > 0:
                cid = doc["customer_id"]
                balance = list_credits(settings, cid)["usable_balance"]
                check_credits_low(settings, cid, doc["period"], balance)
        except Exception as exc:
            run.failures.append(
                {
                    "customer_id": doc["customer_id"],
                    "error": f"invoice.finalized not sent: {type(exc).__name__}",
                }
            )


def _one(run, customer, period, book, counters, store, finalize, now, allow_unpriced) -> None:
    cid = customer["customer_id"]
    revision = 1
    if finalize:
        latest, last_revision, voided = store.period_state(cid, str(period))
        if latest is not None and not voided:
            run.invoices.append(latest)
            run.outcomes.append(_outcome(latest, "existing"))
            return
        revision = last_revision + 1  # after a credit note, the period is issued again
    doc = price_customer(customer, period, book, counters, store)
    for item in doc.get("unpriced", []):
        run.unpriced.append({"customer_id": cid, **item})
    if not doc.pop("has_usage"):
        run.no_usage.append(cid)
        if Decimal(doc["total"]) == 0 and Decimal(doc["subtotal"]) == 0:
            if not finalize:
                run.invoices.append(doc)
                run.outcomes.append(_outcome(doc, "draft"))
            return  # nothing to bill: no zero invoice is issued for an idle customer
    if not finalize:
        run.invoices.append(doc)
        run.outcomes.append(_outcome(doc, "draft"))
        return
    if doc.get("unpriced") and not allow_unpriced:
        raise UnpricedUsage(doc["plan"], doc["unpriced"])
    doc["status"] = "issued"
    doc["issued_at"] = iso_z(now)
    doc["revision"] = revision
    doc["invoice_number"] = invoice_number(cid, period, revision)
    updates = [
        (c["grant_id"], c["available"], c["remaining"])
        for c in doc["credits"]
        if Decimal(c["applied"]) > 0
    ]
    try:
        store.put_invoice(doc, updates)
    except InvoiceExists as race:  # another run issued it first: report that one
        run.invoices.append(race.existing)
        run.outcomes.append(_outcome(race.existing, "existing"))
        return
    run.invoices.append(doc)
    run.outcomes.append(_outcome(doc, "issued"))


class UnpricedUsage(Conflict):
    """Finalizing would bill usage the plan does not price at 0.00, once and for all."""

    def __init__(self, plan: str | None, unpriced: list[dict[str, Any]]):
        models = sorted({u["model"] for u in unpriced})
        super().__init__(
            f"not issued: plan {plan or '(default)'} prices no usage of "
            f"{', '.join(models)}; add {'them' if len(models) > 1 else 'it'} to the price "
            "book, or pass --allow-unpriced to bill that usage at 0.00"
        )
        self.models = models


def _outcome(doc: dict[str, Any], outcome: str) -> dict[str, Any]:
    return {
        "customer_id": doc["customer_id"],
        "customer_name": doc.get("customer_name"),
        "invoice_number": doc["invoice_number"],
        "outcome": outcome,
        "total": doc["total"],
        "currency": doc["currency"],
    }


# ---- credits


def add_credit(
    settings,
    customer_id: str,
    *,
    amount: str,
    priority: int = 0,
    effective: str | None = None,
    expires: str | None = None,
    note: str | None = None,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """Grant prepaid credit to a customer; invoices draw it down in the rules' order."""
    cid = resolve_customer_id(settings, customer_id)
    now = clock()
    eff = parse_date(effective, "effective date") if effective else now.date()
    exp = parse_date(expires, "expiry date") if expires else None
    # parsed here so an error names the option, not the grant id generated just below
    value = to_money(amount, "--amount")
    if value <= 0:
        raise InvalidInput("--amount must be positive")
    grant = CreditGrant(
        id=str(uuid.uuid4()), amount=value, effective=eff, expires=exp, priority=priority
    )
    require_customer(settings, cid)
    record = {
        "grant_id": grant.id,
        "amount": format_money(grant.amount),
        "remaining": format_money(grant.amount),
        "priority": priority,
        "effective": eff.isoformat(),
        "expires": exp.isoformat() if exp else None,
        "created_at": iso_z(now),
        "note": note,
    }
    InvoiceStore(settings.client("dynamodb"), settings.tables.invoices).put_grant(cid, record)
    return {"customer_id": cid, **record}


GRANT_KEYS = ("grant_id", "amount", "remaining", "priority", "effective", "expires",
              "created_at", "note")  # fmt: skip
"""A grant's keys in every output: the same set whatever it holds (None where unset)."""


def list_credits(settings, customer_id: str, *, clock: Clock = system_clock) -> dict[str, Any]:
    """A customer's grants in the order an invoice would draw them, with balances."""
    cid = resolve_customer_id(settings, customer_id)
    stored = InvoiceStore(settings.client("dynamodb"), settings.tables.invoices).grants(cid)
    by_id = {g.id: g for g in _grants(stored)}
    rows = [{key: r.get(key) for key in GRANT_KEYS} for r in stored]
    rows.sort(key=lambda r: by_id[r["grant_id"]].draw_order())
    today = clock().date()
    for r in rows:
        g = by_id[r["grant_id"]]
        r["state"] = (
            "not_yet_effective"
            if g.effective > today
            else "expired"
            if g.expires and g.expires < today
            else "used"
            if g.balance <= 0
            else "usable"
        )
    total = sum((Decimal(r["remaining"]) for r in rows if r["state"] == "usable"), Decimal(0))
    return {"customer_id": cid, "grants": rows, "usable_balance": format_money(total)}


def void_invoice(
    settings, customer_id: str, period: str, *, reason: str, clock: Clock = system_clock
) -> dict[str, Any]:
    """Void the period's invoice with a credit note for its total, giving back the prepaid
    credit it drew. The invoice stays as it was; the next ``--finalize`` issues a revision."""
    cid = resolve_customer_id(settings, customer_id)
    chosen = Period.parse(period)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("--reason is required: say why the invoice is voided")
    store = InvoiceStore(settings.client("dynamodb"), settings.tables.invoices)
    latest, revision, voided = store.period_state(cid, str(chosen))
    if latest is None:
        raise NotFound(f"no finalized invoice for customer {cid} and period {chosen}")
    if voided:
        raise Conflict(f"invoice {latest['invoice_number']} is already voided")
    balances = {g["grant_id"]: Decimal(g["remaining"]) for g in store.grants(cid)}
    restores = []
    for credit in latest.get("credits", []):
        applied = Decimal(credit["applied"])
        if applied > 0 and credit["grant_id"] in balances:
            before = balances[credit["grant_id"]]
            restores.append(
                (credit["grant_id"], format_money(before), format_money(before + applied))
            )
    note = {
        "credit_note_number": "CN-" + latest["invoice_number"][3:],
        "invoice_number": latest["invoice_number"],
        "customer_id": cid,
        "period": str(chosen),
        "revision": revision,
        "currency": latest["currency"],
        "amount": latest["total"],
        "credits_restored": [
            {"grant_id": g, "amount": format_money(Decimal(a) - Decimal(b))} for g, b, a in restores
        ],
        "reason": reason,
        "issued_at": iso_z(clock()),
    }
    store.put_credit_note(note, restores)
    return note
