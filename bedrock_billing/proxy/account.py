"""The caller's own account, read for the customer portal (``/v1/account...``).

Every read is keyed by the customer id the caller's token resolved to, never by an id from
the URL or the query: another customer's invoice number is simply not found under the
caller's key (404, not 403: nothing says it exists). Each answer makes only the reads it
needs (docs/schema.md, "The portal's reads"), eventually consistent, and never writes: the
portal is not model usage, so nothing here is metered, logged as usage or admitted.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from ..core import schema
from ..core.customers import InvalidRecord, read_customer_record
from ..core.invoice_numbers import customer_part, parse_invoice_number
from ..core.items import ItemError, from_item
from ..core.money import format_decimal, format_money, from_cents
from ..core.timeutil import Period, iso_z
from ..core.usage import (
    COUNTERS,
    UsageRow,
    daily_series,
    merge_rows,
    totals,
    with_total_tokens,
)
from .auth import record_invalid
from .errors import ProxyError, bad_request
from .prices import from_pico

# The customer item's attributes the account shows (its token hashes and pricing overrides
# stay out: the read fetches only these).
_CUSTOMER_FIELDS = (
    "customer_id", "#n", "email", "#s", "#p", "plan_history", "daily_request_limit",
    "monthly_token_limit", "requests_per_minute", "monthly_budget", "allowed_models",
)  # fmt: skip
_NAMES = {"#n": "name", "#s": "status", "#p": "plan"}  # DynamoDB's reserved words

# What a customer sees of an invoice document: the operator's margin, AWS's cost, the price
# book's name and hash and the unpriced-usage report are the operator's, never shown.
_INVOICE_FIELDS = (
    "invoice_number", "customer_id", "customer_name", "customer_email", "period", "revision",
    "status", "issued_at", "plan", "currency", "subtotal", "minimum", "true_up", "discounts",
    "discount_total", "credit_total", "total", "usage",
)  # fmt: skip
_LINE_FIELDS = ("kind", "description", "model", "metric", "quantity", "unit_price", "amount")


def not_found(what: str = "invoice") -> ProxyError:
    return ProxyError(404, "not_found", f"no such {what}")


def parse_period(query: dict[str, list[str]], now: datetime) -> Period:
    """``?period=YYYY-MM`` (default: this month); anything else is a 400."""
    values = query.get("period")
    if not values:
        return Period.of(now)
    if len(values) != 1 or len(values[0]) != 7:
        raise bad_request("invalid_period", "period must be one YYYY-MM")
    try:
        period = Period.parse(values[0])
    except Exception:
        raise bad_request("invalid_period", "period must be one YYYY-MM") from None
    if period.year < 2000:
        raise bad_request("invalid_period", "period must be one YYYY-MM from 2000-01 on")
    return period


def _money(value: Decimal) -> str:
    return format_money(value)


class AccountReader:
    """Reads one customer's own items; ``dynamodb`` is the proxy's client getter."""

    def __init__(self, dynamodb, tables: schema.TableNames, currency: str = "USD"):
        self._dynamodb = dynamodb
        self.tables = tables
        self.currency = currency

    # ---- GET /v1/account: 2 GetItem (customer, this month's meter)

    def account(self, customer_id: str, now: datetime) -> dict:
        client = self._dynamodb()
        item = client.get_item(
            TableName=self.tables.customers,
            Key={"customer_id": {"S": customer_id}},
            ProjectionExpression=", ".join(_CUSTOMER_FIELDS),
            ExpressionAttributeNames=_NAMES,
        ).get("Item")
        if not item:  # deleted since the token was cached
            raise ProxyError(401, "invalid_token", "the token is not valid")
        try:
            data = from_item(item)
            limits = read_customer_record(data)
        except (ItemError, InvalidRecord):
            raise record_invalid() from None
        period = Period.of(now)
        meter = client.get_item(
            TableName=self.tables.usage,
            Key={"customer_id": {"S": customer_id}, "sk": {"S": schema.meter_key(now)}},
        ).get("Item")
        meter = _plain(meter) if meter else {}
        today = _count(meter, schema.day_attribute(now))
        month_requests = sum(_count(meter, schema.day_attribute(d)) for d in period.days())
        tokens = _count(meter, "tokens")
        spend = from_pico(_count(meter, "spend"))
        budget = limits.monthly_budget
        remaining = {
            "requests_today": _left(limits.daily_request_limit, today),
            "tokens_this_month": _left(limits.monthly_token_limit, tokens),
            "budget": None if budget is None else _money(max(Decimal(0), budget - spend)),
        }
        return {
            "customer_id": customer_id,
            "name": data.get("name"),
            "email": data.get("email"),
            "status": limits.status,
            "plan": _plan(data, period),
            "period": str(period),
            "today": now.date().isoformat(),
            "as_of": iso_z(now),
            "currency": self.currency,
            "limits": {
                "daily_request_limit": limits.daily_request_limit,
                "monthly_token_limit": limits.monthly_token_limit,
                "requests_per_minute": limits.requests_per_minute,
                "monthly_budget": None if budget is None else _money(budget),
                "allowed_models": (
                    None if limits.allowed_models is None else sorted(limits.allowed_models)
                ),
            },
            "month_to_date": {
                "requests_today": today,
                "requests": month_requests,
                "tokens": tokens,
                "spend": _money(spend),
                "spend_exact": format_decimal(spend),
            },
            "remaining": remaining,
        }

    # ---- GET /v1/account/usage?period=YYYY-MM: 1 Query (the period's DAY# key range)

    def usage(self, customer_id: str, period: Period) -> dict:
        low, high = schema.day_range(period.first_day, period.last_day)
        items = self._query(
            self.tables.usage,
            "customer_id = :c AND sk BETWEEN :lo AND :hi",
            {":c": {"S": customer_id}, ":lo": {"S": low}, ":hi": {"S": high}},
        )
        rows = merge_rows(row for row in map(_usage_row, items) if row is not None)
        by_model: dict[str, list[UsageRow]] = {}
        for row in rows:
            by_model.setdefault(row.model, []).append(row)
        return {
            "customer_id": customer_id,
            "period": str(period),
            "start_date": period.first_day.isoformat(),
            "end_date": period.last_day.isoformat(),
            "rows": [
                {
                    "day": r.day.isoformat(),
                    "model": r.model,
                    **with_total_tokens(r.counter_values()),
                }
                for r in rows
            ],
            "models": [
                {"model": model, **with_total_tokens(totals(model_rows))}
                for model, model_rows in sorted(by_model.items())
            ],
            "daily": [
                {"day": day.isoformat(), **with_total_tokens(counts)}
                for day, counts in daily_series(rows, period.first_day, period.last_day)
            ],
            "totals": with_total_tokens(totals(rows)),
        }

    # ---- GET /v1/account/invoices: 2 Query (INVOICE# and CREDITNOTE# items, no documents)

    def invoices(self, customer_id: str) -> dict:
        key = {":c": {"S": customer_id}}
        found = self._query(
            self.tables.invoices,
            "customer_id = :c AND begins_with(sk, :p)",
            {**key, ":p": {"S": schema.INVOICE_PREFIX}},
            projection="sk, invoice_number, period, issued_at, total_cents, currency",
        )
        notes = self._query(
            self.tables.invoices,
            "customer_id = :c AND begins_with(sk, :p)",
            {**key, ":p": {"S": schema.CREDIT_NOTE_PREFIX}},
            projection="sk",
        )
        voided = {n["sk"]["S"][len(schema.CREDIT_NOTE_PREFIX) :] for n in notes}
        out = []
        for raw in found:
            item = _plain(raw)
            suffix = str(item["sk"])[len(schema.INVOICE_PREFIX) :]
            ref = parse_invoice_number(str(item.get("invoice_number", "")))
            out.append(
                {
                    "id": item.get("invoice_number"),
                    "period": item.get("period"),
                    "revision": ref.revision if ref else 1,
                    "status": "void" if suffix in voided else "issued",
                    "issued_at": item.get("issued_at"),
                    "currency": item.get("currency"),
                    "total": _cents(item.get("total_cents")),
                }
            )
        out.sort(key=lambda i: (str(i["period"]), i["revision"]), reverse=True)
        return {"customer_id": customer_id, "invoices": out}

    # ---- GET /v1/account/invoices/{id}: 2 GetItem (the invoice, its credit note's key)

    def invoice(self, customer_id: str, number: str) -> dict:
        ref = parse_invoice_number(number)
        if ref is None or ref.customer_part != customer_part(customer_id):
            raise not_found()  # another customer's number: never read, never confirmed
        period = str(ref.period)
        item = self._get(customer_id, schema.invoice_key(period, ref.revision), "document")
        if not item or "S" not in item.get("document", {}):
            raise not_found()
        try:
            document = json.loads(item["document"]["S"])
        except ValueError:
            raise not_found() from None
        if not isinstance(document, dict):
            raise not_found()
        if document.get("customer_id") != customer_id or document.get("invoice_number") != number:
            raise not_found()
        note = self._get(customer_id, schema.credit_note_key(period, ref.revision), "sk")
        view = customer_view(document)
        view["status"] = "void" if note else "issued"
        return view

    def _get(self, customer_id: str, sk: str, projection: str) -> dict | None:
        """One of the caller's own invoices-table items, by its sort key."""
        return (
            self._dynamodb()
            .get_item(
                TableName=self.tables.invoices,
                Key={"customer_id": {"S": customer_id}, "sk": {"S": sk}},
                ProjectionExpression=projection,
            )
            .get("Item")
        )

    def _query(self, table: str, condition: str, values: dict, projection: str | None = None):
        kwargs: dict = {
            "TableName": table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if projection:
            kwargs["ProjectionExpression"] = projection
        items: list[dict] = []
        client = self._dynamodb()
        while True:
            page = client.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def customer_view(document: dict) -> dict:
    """The customer's copy of an invoice document: its own fields only (no margin, cost,
    price book or unpriced-usage report), lines and credits as the invoice states them."""
    view = {name: document.get(name) for name in _INVOICE_FIELDS}
    view["id"] = document.get("invoice_number")
    view["lines"] = [
        {name: line.get(name) for name in _LINE_FIELDS}
        for line in document.get("lines") or []
        if isinstance(line, dict)
    ]
    view["credits"] = [
        {"grant": str(c.get("grant_id", ""))[:8], "applied": c.get("applied")}
        for c in document.get("credits") or []
        if isinstance(c, dict) and c.get("applied") not in (None, "0.00")
    ]
    return view


def _left(limit: int | None, used: int) -> int | None:
    return None if limit is None else max(0, limit - used)


def _cents(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return str(from_cents(value))


def _plan(data: dict, period: Period) -> str | None:
    """The plan in force this period (its history), else the item's plan, as invoices read it."""
    from ..core.pricing.book import plan_in_force  # the portal's first use only

    history = data.get("plan_history")
    try:
        plan = plan_in_force(history if isinstance(history, list) else [], period)
    except Exception:  # a malformed history entry: fall back to the item's plan
        plan = None
    plan = plan or data.get("plan")
    return plan if isinstance(plan, str) else None


def _count(item: dict, name: str) -> int:
    value = item.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _plain(item: dict) -> dict:
    """An item as plain values; an attribute the codec cannot read (an item edited by hand)
    is left out rather than failing the whole list."""
    out = {}
    for name, value in item.items():
        try:
            out[name] = from_item({name: value})[name]
        except ItemError:
            continue
    return out


def _usage_row(item: dict) -> UsageRow | None:
    try:
        day, model = schema.parse_day_key(item["sk"]["S"])
    except (KeyError, ValueError):  # not a DAY# key the proxy writes: not usage
        return None
    counts = {}
    for name in COUNTERS:
        raw = item.get(name, {}).get("N", "0")
        try:
            counts[name] = max(0, int(raw))
        except ValueError:
            counts[name] = 0
    return UsageRow(day, model, **counts)
