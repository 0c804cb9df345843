"""Reports across customers (``report margin``) and the sandbox's own AWS bill."""

from __future__ import annotations

import typer

from ..app import app
from ..options import Period, PriceBook
from ..render import bar_chart, emit, note, print_table, stdout_console, svg_bar_chart

report_app = typer.Typer(help="Reports across customers.", no_args_is_help=True)
app.add_typer(report_app, name="report")

MARGIN_COLUMNS = [
    ("customer_name", "Customer"),
    ("customer_id", "Id"),
    ("model", "Model"),
    ("revenue", "Revenue"),
    ("aws_cost", "AWS cost"),
    ("aws_cost_source", "From"),
    ("margin", "Margin"),
    ("margin_percent", "Margin %"),
]
CSV_COLUMNS = [*MARGIN_COLUMNS, ("book_cost", "Book cost"), ("cur_cost", "CUR cost")]


@report_app.command("margin")
def margin(
    ctx: typer.Context,
    period: Period = None,
    against: str = typer.Option(
        None, "--against", help="cur: AWS cost from the AWS bill where it is in."
    ),
    price_book: PriceBook = None,
    cur_table: str = typer.Option(None, "--cur-table", help="The CUR 2.0 export's Athena table."),
    cur_s3: str = typer.Option(None, "--cur-s3", help="s3://bucket/prefix/EXPORT/data (DuckDB)."),
    chart: str = typer.Option(None, "--chart", help="Also write an SVG bar chart to this file."),
) -> None:
    """Revenue, AWS cost and margin per customer and model for a period, from its invoices
    (issued, else drafts); largest margin first."""
    from ...services.margin_reports import margin_report

    report = margin_report(ctx.obj, period=period, against=against, price_book=price_book,
                           cur_table=cur_table, cur_s3=cur_s3)  # fmt: skip
    data = report.to_dict()
    for warning in data["warnings"]:
        note(f"warning: {warning}")
    per_customer = _per_customer(data["rows"])
    if chart:
        title = f"Margin per customer, {data['period']} ({data['against']})"
        with open(chart, "w", encoding="utf-8") as handle:
            handle.write(svg_bar_chart(per_customer, title))
        note(f"wrote {chart}")

    def tables() -> None:
        rows = [dict(r, customer_id=(r["customer_id"] or "")[:8]) for r in data["rows"]]
        print_table({"rows": rows}, rows_key="rows", columns=MARGIN_COLUMNS,
                    title=f"Margin {data['period']} (AWS cost: {data['against']})")  # fmt: skip
        t = data["totals"]
        note(f"revenue {t['revenue']} - AWS cost {t['aws_cost']} = margin {t['margin']} "
             f"({t['margin_percent'] or '-'}%); invoiced {t['invoiced']} after credits "
             f"{t['credits']}")  # fmt: skip
        positive = [(name, int(value * 100)) for name, value in per_customer if value > 0]
        if positive:
            stdout_console().print("Margin per customer (cents)\n" + bar_chart(positive),
                                   markup=False)  # fmt: skip

    emit(ctx.obj, data, rows_key="rows", columns=CSV_COLUMNS, table=tables)


def _per_customer(rows: list[dict]) -> list[tuple[str, object]]:
    from decimal import Decimal

    totals: dict[str, Decimal] = {}
    for row in rows:
        name = row["customer_name"] or (row["customer_id"] or "")[:8]
        totals[name] = totals.get(name, Decimal(0)) + Decimal(row["margin"])
    return sorted(totals.items(), key=lambda item: -item[1])


@app.command("sandbox-bill")
def sandbox_bill(
    ctx: typer.Context,
    period: str = typer.Option(..., "--period", help="YYYY-MM: the month to bill."),
    price_book: PriceBook = None,
    final: bool = typer.Option(
        None, "--final/--open", help="Close the bill (default: closed once the month is over)."
    ),
) -> None:
    """Write the sandbox's AWS bill: a CUR 2.0-shaped Parquet file of Bedrock line items
    for what the proxy served, priced with the book, for `reconcile --against cur`."""
    from ...services.cur_sources import write_sandbox_cur

    result = write_sandbox_cur(ctx.obj, period=period, price_book=price_book, final=final)
    emit(ctx.obj, result, columns=[("period", "Period"), ("location", "Written to"),
         ("line_items", "Line items"), ("aws_cost", "AWS cost"), ("final", "Final")])  # fmt: skip
