"""Invoice documents to send: Markdown or HTML, one file per invoice.

They render the stored (or draft) invoice document as it is: the amounts are the
invoice's own decimal strings, never recomputed here.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

FORMATS = ("markdown", "html")


def charge_lines(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The charge lines; the minimum true-up is shown after the subtotal instead."""
    return [line for line in doc["lines"] if line.get("kind") != "true_up"]


def _rows(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for line in charge_lines(doc):
        qty = f"{line['quantity']:,}" if line.get("quantity") is not None else ""
        price = line.get("unit_price") or ""
        rows.append((line["description"], qty, price, line["amount"]))
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


def _header(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("Invoice", doc["invoice_number"] + ("" if doc["status"] == "issued" else " (DRAFT)")),
        ("Customer", f"{doc.get('customer_name') or ''} <{doc.get('customer_email') or ''}>"),
        ("Customer ID", doc["customer_id"]),
        ("Period", doc["period"]),
        ("Plan", doc["plan"]),
        ("Issued", doc.get("issued_at") or "not issued"),
        ("Currency", doc["currency"]),
    ]


def render_markdown(doc: dict[str, Any]) -> str:
    out = [f"# Invoice {doc['invoice_number']}", ""]
    out += [f"- **{k}:** {v}" for k, v in _header(doc)]
    out += ["", "| Item | Quantity | Unit price | Amount |", "| --- | ---: | ---: | ---: |"]
    out += [f"| {d} | {q} | {p} | {a} |" for d, q, p, a in _rows(doc)]
    out += [""] + [f"**{k}:** {v}  " for k, v in total_rows(doc)] + [""]
    return "\n".join(out)


def render_html(doc: dict[str, Any]) -> str:
    e = html.escape
    head = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in _header(doc))
    lines = "".join(
        f"<tr><td>{e(d)}</td><td class=n>{e(q)}</td><td class=n>{e(p)}</td>"
        f"<td class=n>{e(a)}</td></tr>"
        for d, q, p, a in _rows(doc)
    )
    totals = "".join(
        f"<tr><th colspan=3>{e(k)}</th><td class=n>{e(v)}</td></tr>" for k, v in total_rows(doc)
    )
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>Invoice {e(doc['invoice_number'])}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse;width:100%;margin:1em 0}"
        "td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left}.n{text-align:right}"
        "</style></head><body>"
        f"<h1>Invoice {e(doc['invoice_number'])}</h1><table>{head}</table>"
        "<table><tr><th>Item</th><th class=n>Quantity</th><th class=n>Unit price</th>"
        f"<th class=n>Amount</th></tr>{lines}{totals}</table></body></html>\n"
    )


def write_documents(docs: list[dict[str, Any]], out_dir: str, fmt: str) -> list[str]:
    """Write one file per invoice into ``out_dir``; returns the paths written."""
    render, ext = (render_markdown, "md") if fmt == "markdown" else (render_html, "html")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in docs:
        path = folder / f"{doc['invoice_number']}.{ext}"
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(render(doc), encoding="utf-8")
        tmp.replace(path)  # never a half-written document
        paths.append(str(path))
    return paths
