"""Commands that turn usage into money: invoice, quote, credits, prices export."""

from __future__ import annotations

import typer

from ...core.errors import EXIT_PARTIAL, InvalidInput
from ..app import announce_write, app
from ..options import AllCustomers, CustomerId, OneCustomer, Period, PriceBook
from ..render import emit, emit_export, invoice_table, note, print_table, progress

LINE_COLUMNS = [
    ("description", "Item"),
    ("quantity", "Quantity"),
    ("unit_price", "Unit price"),
    ("amount", "Amount"),
]
OUTCOME_COLUMNS = [
    ("invoice_number", "Invoice"),
    ("customer_name", "Customer"),
    ("outcome", "Outcome"),
    ("total", "Total"),
    ("currency", "Currency"),
]
INVOICE_CSV = [
    ("invoice_number", "invoice_number"),
    ("customer_id", "customer_id"),
    ("period", "period"),
    ("plan", "plan"),
    ("status", "status"),
    ("currency", "currency"),
    ("subtotal", "subtotal"),
    ("true_up", "true_up"),
    ("discount_total", "discount_total"),
    ("credit_total", "credit_total"),
    ("total", "total"),
]

GRANT_COLUMNS = [
    ("grant_id", "Grant"),
    ("amount", "Amount"),
    ("remaining", "Remaining"),
    ("priority", "Priority"),
    ("effective", "Effective"),
    ("expires", "Expires"),
    ("state", "State"),
]
PRICE_COLUMNS = [
    ("model", "model"),
    ("input", "input"),
    ("output", "output"),
    ("cache_read", "cache_read"),
    ("cache_write", "cache_write"),
]

credits_app = typer.Typer(help="Prepaid credit grants.", no_args_is_help=True)
prices_app = typer.Typer(
    help="Per-model prices for the proxy's budget limit.", no_args_is_help=True
)
app.add_typer(credits_app, name="credits")
app.add_typer(prices_app, name="prices")


def print_invoice(doc: dict) -> None:
    from ...services.invoice_documents import charge_lines, total_rows

    invoice_table(doc, charge_lines(doc), total_rows(doc))


def _summary(run) -> None:
    s = run.summary()
    note(
        f"{s['invoices']} invoice(s) for {run.period}: {s['issued']} issued, {s['existing']} "
        f"already issued, {s['drafts']} draft(s); total billed {s['total_billed']}; revenue "
        f"{s['revenue']}, AWS cost {s['aws_cost']}, margin {s['margin']}; "
        f"{s['customers_without_usage']} customer(s) without usage; {s['failures']} failure(s)."
    )
    for f in run.failures:
        note(f"failed: {f['customer_id']}: {f['error']}")


def _unpriced_note(unpriced) -> None:
    """On stderr in every output format: unpriced usage is billed 0.00."""
    models = sorted({(u["model"], u["metric"]) for u in unpriced})
    if models:
        note(
            "warning: usage not priced by the plan (billed 0.00): "
            + ", ".join(f"{m} {k}" for m, k in models)
        )


@app.command("invoice")
def invoice(
    ctx: typer.Context,
    period: str = typer.Option(None, "--period", help="YYYY-MM (default: previous month)."),
    customer_id: OneCustomer = None,
    all_customers: AllCustomers = False,
    finalize: bool = typer.Option(False, "--finalize", help="Issue and store (once)."),
    force: bool = typer.Option(False, "--force", help="Finalize before the settling window."),
    settle: str = typer.Option("24h", "--settle", help="Settling window after month end."),
    price_book: PriceBook = None,
    fmt: str = typer.Option(None, "--format", help="Document: markdown or html (with --out)."),
    out: str = typer.Option(None, "--out", help="Folder for one document per invoice."),
    allow_unpriced: bool = typer.Option(
        False, "--allow-unpriced", help="Finalize even usage the plan does not price (at 0.00)."
    ),
) -> None:
    """Price a period's usage into invoices: drafts by default, --finalize to issue."""
    from ...services.invoice_documents import FORMATS, write_documents
    from ...services.invoices import run_invoices

    if fmt and fmt not in FORMATS:
        raise InvalidInput(f"invalid --format {fmt!r}: choose markdown or html")
    if fmt and not out:
        raise InvalidInput("--format needs --out DIR")
    with progress("Invoicing", show=all_customers) as update:
        run = run_invoices(
            ctx.obj, period=period, customer_id=customer_id, all_customers=all_customers,
            finalize=finalize, force=force, settle=settle, price_book=price_book,
            progress=update,
            allow_unpriced=allow_unpriced,
        )  # fmt: skip
    if out:
        for path in write_documents(run.invoices, out, fmt or "markdown", settings=ctx.obj):
            note(f"wrote {path}")
    data = run.to_dict()

    def tables() -> None:
        for doc in run.invoices:
            print_invoice(doc)
        if len(run.invoices) > 1 or all_customers:
            print_table(data, rows_key="outcomes", columns=OUTCOME_COLUMNS)

    emit(ctx.obj, data, csv_key="invoices", csv_columns=INVOICE_CSV, table=tables)
    if all_customers or ctx.obj.output != "table":
        _summary(run)
    _unpriced_note(run.unpriced)
    if finalize:
        announce_write(ctx.obj)
    if run.failed:
        raise typer.Exit(EXIT_PARTIAL)


@app.command("void-invoice")
def void_invoice(
    ctx: typer.Context,
    customer_id: CustomerId,
    period: str = typer.Option(..., "--period", help="YYYY-MM of the invoice to void."),
    reason: str = typer.Option(..., "--reason", help="Why (kept on the credit note)."),
) -> None:
    """Void a finalized invoice with a credit note (the invoice itself never changes);
    the next `invoice --finalize` for that period issues a new revision."""
    from ...services.invoices import void_invoice as void

    note_doc = void(ctx.obj, customer_id, period, reason=reason)
    emit(ctx.obj, note_doc, columns=[
        ("credit_note_number", "Credit note"), ("invoice_number", "Voids invoice"),
        ("amount", "Amount"), ("currency", "Currency"), ("reason", "Reason"),
        ("issued_at", "Issued"),
    ])  # fmt: skip
    announce_write(ctx.obj)


@app.command("quote")
def quote(
    ctx: typer.Context,
    plan: str = typer.Option(None, "--plan", help="Plan name (default: the book's default)."),
    price_book: PriceBook = None,
    period: str = typer.Option(None, "--period", help="YYYY-MM (default: the usage's month)."),
    model: str = typer.Option(None, "--model", help="Model id for usage given by flags."),
    requests: int = typer.Option(0, "--requests", min=0),
    input_tokens: int = typer.Option(0, "--input-tokens", min=0),
    output_tokens: int = typer.Option(0, "--output-tokens", min=0),
    cache_read: int = typer.Option(0, "--cache-read-input-tokens", min=0),
    cache_write: int = typer.Option(0, "--cache-write-input-tokens", min=0),
    usage: str = typer.Option(None, "--usage", help="Daily usage rows: CSV or JSON lines."),
    credits: str = typer.Option(None, "--credits", help="Credit grants: CSV or JSON lines."),
) -> None:
    """Price a hypothetical month without touching AWS (the same code path as invoice)."""
    from ...services.quotes import make_quote

    doc = make_quote(
        ctx.obj, plan=plan, price_book=price_book, period=period, model=model,
        counts=(requests, input_tokens, output_tokens, cache_read, cache_write),
        usage_file=usage, credits_file=credits,
    )  # fmt: skip
    emit(ctx.obj, doc, rows_key="lines", columns=LINE_COLUMNS, table=lambda: print_invoice(doc))
    _unpriced_note(doc.get("unpriced", []))


@credits_app.command("add")
def credits_add(
    ctx: typer.Context,
    customer_id: CustomerId,
    amount: str = typer.Option(..., "--amount", help="e.g. 100.00"),
    priority: int = typer.Option(0, "--priority", help="Lower is drawn first."),
    effective: str = typer.Option(None, "--effective", help="YYYY-MM-DD (default today)."),
    expires: str = typer.Option(None, "--expires", help="YYYY-MM-DD, usable through that day."),
    note_text: str = typer.Option(None, "--note", help="Why it was granted."),
) -> None:
    """Grant prepaid credit; invoices draw it down."""
    from ...services.invoices import add_credit

    grant = add_credit(
        ctx.obj, customer_id, amount=amount, priority=priority, effective=effective,
        expires=expires, note=note_text,
    )  # fmt: skip
    emit(ctx.obj, grant)
    announce_write(ctx.obj)


@credits_app.command("list")
def credits_list(ctx: typer.Context, customer_id: CustomerId) -> None:
    """A customer's grants in draw-down order, with balances."""
    from ...services.invoices import list_credits

    result = list_credits(ctx.obj, customer_id)
    emit(ctx.obj, result, rows_key="grants", columns=GRANT_COLUMNS,
         footer=f"Usable balance: {result['usable_balance']}")  # fmt: skip


@prices_app.command("export")
def prices_export(
    ctx: typer.Context,
    price_book: PriceBook = None,
    plan: str = typer.Option(None, "--plan", help="Plan whose per-token prices to export."),
    period: Period = None,
    out: str = typer.Option(None, "--out", help="Write the JSON to FILE instead of stdout."),
) -> None:
    """Print the proxy's per-model price JSON (its budget limit) from the price book;
    -o csv prints one row per model instead."""
    from ...services.quotes import export_proxy_prices

    doc = export_proxy_prices(ctx.obj, price_book=price_book, plan=plan, period=period)
    rows = [{"model": model, **prices} for model, prices in doc["models"].items()]
    emit_export(ctx.obj, doc, rows, PRICE_COLUMNS, out=out)
    if out:
        note(f"wrote {out}")
