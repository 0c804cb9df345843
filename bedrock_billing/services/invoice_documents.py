"""Invoice documents to send: Markdown or HTML, one file per invoice.

They render the stored (or draft) invoice document as it is: the amounts are the
invoice's own decimal strings, never recomputed here, shown with the currency's sign. The
seller (name, address, tax id) and the payment terms come from the configuration; a
per-token unit price is shown per million tokens; a draft says so at the top.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..core.usage import TOKEN_METRICS

FORMATS = ("markdown", "html")
SIGNS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CHF": "CHF ", "CAD": "CA$",
         "AUD": "A$", "INR": "₹"}  # fmt: skip
DEFAULT_TERMS_DAYS = 30
DRAFT_NOTE = "DRAFT: not an invoice yet; amounts may change until it is issued."


@dataclass(frozen=True)
class Seller:
    """Who issues the invoice, from the configuration (``seller_*`` keys)."""

    name: str | None = None
    address: str | None = None
    tax_id: str | None = None
    terms_days: int = DEFAULT_TERMS_DAYS

    @classmethod
    def from_settings(cls, settings) -> Seller:
        if settings is None:
            return cls()
        terms = getattr(settings, "payment_terms_days", None)
        try:
            days = int(terms) if terms not in (None, "") else DEFAULT_TERMS_DAYS
        except ValueError:
            days = -1
        if days < 0:
            from ..core.errors import InvalidInput

            raise InvalidInput(f"invalid payment_terms_days {terms!r}: a whole number of days")
        return cls(
            name=getattr(settings, "seller_name", None),
            address=getattr(settings, "seller_address", None),
            tax_id=getattr(settings, "seller_tax_id", None),
            terms_days=days,
        )


def money(doc: dict[str, Any], amount: str) -> str:
    """``-12.50`` in USD as ``-$12.50``: the invoice's own digits, with the sign."""
    sign = SIGNS.get(doc.get("currency", ""), "")
    if not sign:
        return f"{amount} {doc.get('currency', '')}".strip()
    minus = amount.startswith("-")
    return ("-" if minus else "") + sign + amount.lstrip("-")


def unit_price(doc: dict[str, Any], line: dict[str, Any]) -> str:
    """A token price per million tokens (``$0.25 / 1M tokens``); other units as they are."""
    price = line.get("unit_price")
    if not price:
        return ""
    if line.get("metric") in (*TOKEN_METRICS, "tokens"):
        try:
            per_million = (Decimal(price) * 1_000_000).normalize()
        except InvalidOperation:
            return price
        text = f"{per_million:f}"
        if "." in text and len(text.split(".")[1]) < 2:
            text = f"{per_million:.2f}"
        return f"{money(doc, text)} / 1M tokens"
    return money(doc, price)


def due_date(doc: dict[str, Any], seller: Seller) -> str:
    issued = doc.get("issued_at")
    if not issued:
        return f"{seller.terms_days} days after issue"
    return (date.fromisoformat(issued[:10]) + timedelta(days=seller.terms_days)).isoformat()


def is_draft(doc: dict[str, Any]) -> bool:
    return doc.get("status") != "issued"


def charge_lines(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The charge lines; the minimum true-up is shown after the subtotal instead."""
    return [line for line in doc["lines"] if line.get("kind") != "true_up"]


def _rows(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for line in charge_lines(doc):
        qty = f"{line['quantity']:,}" if line.get("quantity") is not None else ""
        rows.append((line["description"], qty, unit_price(doc, line), money(doc, line["amount"])))
    return rows


def total_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    out = [("Subtotal", doc["subtotal"])]
    if doc.get("true_up") and doc["true_up"] != "0.00":
        out.append((f"Minimum commitment true-up (minimum {doc['minimum']})", doc["true_up"]))
    for d in doc.get("discounts", []):
        out.append((f"Discount: {d['name']}", "-" + d["amount"]))
    for c in doc.get("credits", []):
        if c["applied"] != "0.00":
            out.append((f"Prepaid credit {c['grant_id'][:8]}", "-" + c["applied"]))
    out.append(("Total", doc["total"]))
    return out


def _seller_rows(seller: Seller) -> list[tuple[str, str]]:
    rows = [("From", seller.name), ("Address", seller.address), ("Tax ID", seller.tax_id)]
    return [(k, v) for k, v in rows if v]


def _header(doc: dict[str, Any], seller: Seller) -> list[tuple[str, str]]:
    return _seller_rows(seller) + [
        ("Invoice", doc["invoice_number"] + (" (DRAFT)" if is_draft(doc) else "")),
        ("Customer", f"{doc.get('customer_name') or ''} <{doc.get('customer_email') or ''}>"),
        ("Customer ID", doc["customer_id"]),
        ("Period", doc["period"]),
        ("Plan", doc["plan"]),
        ("Issued", doc.get("issued_at") or "not issued"),
        ("Due", due_date(doc, seller)),
        ("Currency", doc["currency"]),
    ]


def _totals(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(label, money(doc, amount)) for label, amount in total_rows(doc)]


KEY_HEADINGS = ("Key", "Requests", "Input tokens", "Output tokens", "Cache tokens")


def key_rows(doc: dict[str, Any]) -> list[tuple[str, ...]]:
    """Usage per key (plans with ``lines_per_key``): quantities, no amounts."""
    return [
        (
            str(line.get("key_name") or line.get("key_id")),
            f"{line['requests']:,}",
            f"{line['input_tokens']:,}",
            f"{line['output_tokens']:,}",
            f"{line['cache_read_input_tokens'] + line['cache_write_input_tokens']:,}",
        )
        for line in doc.get("key_lines") or []
    ]


def render_markdown(doc: dict[str, Any], seller: Seller | None = None) -> str:
    seller = seller or Seller()
    title = f"# {'DRAFT ' if is_draft(doc) else ''}Invoice {doc['invoice_number']}"
    out = [title, ""] + ([f"> **{DRAFT_NOTE}**", ""] if is_draft(doc) else [])
    out += [f"- **{k}:** {v}" for k, v in _header(doc, seller)]
    out += ["", "| Item | Quantity | Unit price | Amount |", "| --- | ---: | ---: | ---: |"]
    out += [f"| {d} | {q} | {p} | {a} |" for d, q, p, a in _rows(doc)]
    out += [""] + [f"**{k}:** {v}  " for k, v in _totals(doc)] + [""]
    if doc.get("key_lines"):
        out += ["## Usage per key", "", "| " + " | ".join(KEY_HEADINGS) + " |",
                "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
        out += ["| " + " | ".join(row) + " |" for row in key_rows(doc)] + [""]
    return "\n".join(out)


def render_html(doc: dict[str, Any], seller: Seller | None = None) -> str:
    e = html.escape
    seller = seller or Seller()
    head = "".join(
        f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in _header(doc, seller)
    )
    lines = "".join(
        f"<tr><td>{e(d)}</td><td class=n>{e(q)}</td><td class=n>{e(p)}</td>"
        f"<td class=n>{e(a)}</td></tr>"
        for d, q, p, a in _rows(doc)
    )
    totals = "".join(
        f"<tr><th colspan=3>{e(k)}</th><td class=n>{e(v)}</td></tr>" for k, v in _totals(doc)
    )
    draft = f"<p class=draft>{e(DRAFT_NOTE)}</p>" if is_draft(doc) else ""
    per_key = ""
    if doc.get("key_lines"):
        cells = "".join(
            "<tr>" + "".join(f"<td{' class=n' if i else ''}>{e(v)}</td>"
                             for i, v in enumerate(row)) + "</tr>"
            for row in key_rows(doc)
        )  # fmt: skip
        heads = "".join(
            f"<th{' class=n' if i else ''}>{h}</th>" for i, h in enumerate(KEY_HEADINGS)
        )
        per_key = f"<h2>Usage per key</h2><table><tr>{heads}</tr>{cells}</table>"
    title = f"{'DRAFT ' if is_draft(doc) else ''}Invoice {e(doc['invoice_number'])}"
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse;width:100%;margin:1em 0}"
        "td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left}.n{text-align:right}"
        ".draft{border:3px solid #c00;color:#c00;font-size:1.4em;font-weight:bold;"
        "padding:.5em;text-align:center}"
        "</style></head><body>"
        f"<h1>{title}</h1>{draft}<table>{head}</table>"
        "<table><tr><th>Item</th><th class=n>Quantity</th><th class=n>Unit price</th>"
        f"<th class=n>Amount</th></tr>{lines}{totals}</table>{per_key}</body></html>\n"
    )


def write_documents(
    docs: list[dict[str, Any]], out_dir: str, fmt: str, settings=None
) -> list[str]:
    """Write one file per invoice into ``out_dir``; returns the paths written. The seller
    and the payment terms come from ``settings`` (the config's ``seller_*`` keys)."""
    render, ext = (render_markdown, "md") if fmt == "markdown" else (render_html, "html")
    seller = Seller.from_settings(settings)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in docs:
        path = folder / f"{doc['invoice_number']}.{ext}"
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(render(doc, seller), encoding="utf-8")
        tmp.replace(path)  # never a half-written document
        paths.append(str(path))
    return paths
