"""Commands that read usage: usage (counters or log) and reconcile (counters vs log)."""

from __future__ import annotations

import sys

import typer

from ...core.errors import EXIT_DIFFERENCES, InvalidInput
from ..app import announce_write, app
from ..options import AllCustomers, EndDate, OneCustomer, Period, PriceBook, StartDate, Yes
from ..render import (
    bar_chart,
    emit,
    for_people,
    note,
    print_table,
    progress,
    stderr_console,
    stdout_console,
)

COUNT_COLUMNS = [
    ("requests", "Requests"),
    ("input_tokens", "Input tok"),
    ("output_tokens", "Output tok"),
    ("cache_read_input_tokens", "Cache read"),
    ("cache_write_input_tokens", "Cache write"),
    ("refused", "Refused"),
    ("errors", "Errors"),
    ("estimated", "Estimated"),
]
ROW_COLUMNS = [
    ("customer_name", "Customer"),
    ("customer_id", "Id"),
    ("day", "Day"),
    ("model", "Model"),
] + COUNT_COLUMNS
# A row's every field, in order (the name last: scripts written before it keep working)
CSV_COLUMNS = [*ROW_COLUMNS[1:], ("total_tokens", "Total tokens"), ("customer_name", "Customer")]
DIFF_COLUMNS = [
    ("customer_id", "Customer"),
    ("day", "Day"),
    ("model", "Model"),
    ("counter", "Counter"),
    ("counters_value", "Counters"),
    ("log_value", "Log"),
    ("difference", "Difference"),
]
ABANDONED_COLUMNS = [
    ("customer_id", "Customer"),
    ("admitted_at", "Admitted"),
    ("model", "Model"),
    ("request_id", "Request"),
    ("request_bytes", "Input bytes"),
    ("max_tokens", "Max tokens"),
]
SHORT_ID = 8  # characters of an id a table shows: `show` and every --customer-id take it


def _usage_per_key(ctx, customer_id, start_date, end_date, period, source) -> None:
    from ...services.keys import key_usage
    from .keys import emit_key_usage

    if not customer_id:
        raise InvalidInput("--group-by key needs --customer-id")
    report = key_usage(
        ctx.obj, customer_id, start_date=start_date, end_date=end_date, period=period,
        source=source,
    )
    emit_key_usage(ctx.obj, report)


@app.command("usage")
def usage(
    ctx: typer.Context,
    customer_id: OneCustomer = None,
    all_customers: AllCustomers = False,
    start_date: StartDate = None,
    end_date: EndDate = None,
    period: Period = None,
    group_by: str = typer.Option(
        "day,model", "--group-by", help="day, model, day,model, none; or key (one customer)."
    ),
    source: str = typer.Option(
        "dynamodb", "--source", help="dynamodb (the proxy's counters) or athena (the log)."
    ),
) -> None:
    """Requests and tokens per customer, day and model (UTC), from counters or the log."""
    from ...services.usage_sources import report_usage

    if group_by.strip().lower() == "key":  # the KEY# counters: one customer, per key and day
        _usage_per_key(ctx, customer_id, start_date, end_date, period, source)
        return

    with progress("Reading usage", show=all_customers or source == "athena") as update:
        report = report_usage(
            ctx.obj, customer_id=customer_id, all_customers=all_customers,
            start_date=start_date, end_date=end_date, period=period, group_by=group_by,
            source=source, progress=update,
        )  # fmt: skip
    data = report.to_dict()
    for warning in data["warnings"]:
        note(f"warning: {warning}")
    emit(ctx.obj, data, rows_key="rows", columns=CSV_COLUMNS, table=lambda: _usage_tables(data))


def _usage_tables(data: dict) -> None:
    title = (
        f"Usage {data['start_date']} to {data['end_date']} "
        f"({data['source']}, {data['customer_count']} customer(s))"
    )
    hidden = _hidden(data["group_by"], data["totals"])
    columns = [c for c in ROW_COLUMNS if c[0] not in hidden]
    rows = [dict(r, customer_id=r["customer_id"][:SHORT_ID]) for r in data["rows"]]
    print_table({"rows": rows}, rows_key="rows", columns=columns, title=title)
    totals = [c for c in COUNT_COLUMNS if c[0] not in hidden]
    print_table({"rows": [data["totals"]]}, rows_key="rows", columns=totals, title="Totals")
    series = [(d["day"][5:], d["requests"]) for d in data["daily"]]
    if any(v for _, v in series) and len(series) > 1:
        stdout_console().print("Requests per day (UTC)\n" + bar_chart(series), markup=False)


ALWAYS_SHOWN = {"requests", "input_tokens", "output_tokens"}


def _hidden(group_by: str, totals: dict) -> set[str]:
    """Columns a person does not need: an ungrouped dimension, counters zero everywhere
    (JSON and CSV keep every column)."""
    hidden = {key for key, _ in COUNT_COLUMNS if key not in ALWAYS_SHOWN and not totals[key]}
    if "day" not in group_by:
        hidden.add("day")
    if "model" not in group_by:
        hidden.add("model")
    return hidden


@app.command("reconcile")
def reconcile(
    ctx: typer.Context,
    period: Period = None,
    start_date: StartDate = None,
    end_date: EndDate = None,
    customer_id: OneCustomer = None,
    against: str = typer.Option(
        "usage-log",
        "--against",
        help="usage-log (the counters against the proxy's log), invocation-logs "
        "(the proxy's log against Bedrock's model invocation logs) or cur (the log and the "
        "price book against the AWS bill).",
    ),
    log_source: str = typer.Option(
        "s3", "--log-source", help="Where Bedrock's invocation logs are: s3 or cloudwatch."
    ),
    log_group: str = typer.Option(
        None, "--log-group", help="CloudWatch Logs group of the invocation logs."
    ),
    repair: bool = typer.Option(
        False,
        "--repair",
        help="Rebuild a past day's counters from the log; with --against invocation-logs, "
        "book what Bedrock served and the proxy did not record (asks first).",
    ),
    day: str = typer.Option(None, "--day", help="The day to repair, YYYY-MM-DD."),
    yes: Yes = False,
    price_book: PriceBook = None,
    cur_table: str = typer.Option(
        None, "--cur-table", help="With --against cur: the CUR 2.0 export's Athena table."
    ),
    cur_s3: str = typer.Option(
        None, "--cur-s3", help="With --against cur: s3://bucket/prefix/EXPORT/data (DuckDB)."
    ),
    tolerance: str = typer.Option(
        None, "--tolerance", help="With --against cur: cost difference ignored (default 0.01)."
    ),
) -> None:
    """Compare the proxy's counters with the request log, or the log with Bedrock's
    invocation logs (exit 5 on any difference), or with --against cur the log and the price
    book with the AWS bill (exit 6 until the month's bill is final)."""
    from ...services.usage_sources import reconcile_usage

    if against == "cur":
        _against_cur(ctx, period, price_book, cur_table, cur_s3, tolerance)
        return
    if against == "invocation-logs":
        if customer_id or day:
            raise InvalidInput("--against invocation-logs checks every customer: no --customer-id "
                               "or --day")  # fmt: skip
        _against_invocation_logs(ctx, period, start_date, end_date, log_source, log_group,
                                 repair, yes)  # fmt: skip
        return
    if against != "usage-log":
        raise InvalidInput(
            f"invalid --against {against!r}: choose usage-log, invocation-logs or cur"
        )
    if repair:
        _repair(ctx, day, customer_id, yes)
        return
    with progress("Reconciling") as update:
        report = reconcile_usage(
            ctx.obj, customer_id=customer_id, start_date=start_date, end_date=end_date,
            period=period, progress=update,
        )  # fmt: skip
    data = report.to_dict()
    for warning in data["warnings"]:
        note(f"warning: {warning}")
    emit(ctx.obj, data, rows_key="rows", columns=DIFF_COLUMNS, title="Differences")
    abandoned = data["abandoned"]
    if abandoned:
        for_people(ctx.obj, lambda: print_table(data, rows_key="abandoned",
                   columns=ABANDONED_COLUMNS, title="Abandoned requests"))  # fmt: skip
    for row in abandoned:
        note(
            f"{row['reason']}: request {row['request_id']} of customer {row['customer_id']}, "
            f"{row['model']}, {row['request_bytes']} bytes in, max_tokens {row['max_tokens']}"
        )
    diffs = data["totals"]["differences"]
    note(
        f"{diffs} difference(s) and {len(abandoned)} abandoned request(s) over "
        f"{data['customers_checked']} customer(s), "
        f"{data['start_date']} to {data['end_date']} (log: {data['log_source']})"
    )
    raise typer.Exit(report.exit_code)


BILL_COLUMNS = [
    ("model", "Model"),
    ("usage_type", "Usage type"),
    ("token_type", "Tokens"),
    ("proxy_tokens", "Proxy"),
    ("aws_tokens", "AWS"),
    ("aws_cost", "AWS cost"),
    ("book_cost", "Book cost"),
    ("cost_difference", "Difference"),
]
FINDING_COLUMNS = [
    ("kind", "Kind"),
    ("model", "Model"),
    ("usage_type", "Usage type"),
    ("token_type", "Tokens"),
    ("amount", "Amount"),
    ("detail", "Explanation"),
]


def _against_cur(ctx, period, price_book, cur_table, cur_s3, tolerance) -> None:
    from ...services.cur_sources import reconcile_cur

    with progress("Reconciling with the AWS bill") as update:
        report = reconcile_cur(
            ctx.obj, period=period, price_book=price_book, cur_table=cur_table, cur_s3=cur_s3,
            tolerance=tolerance, progress=update,
        )  # fmt: skip
    data = report.to_dict()
    for warning in data["warnings"]:
        note(f"warning: {warning}")

    def tables() -> None:
        print_table(data, rows_key="rows", columns=BILL_COLUMNS,
                    title=f"Bedrock {data['period']}: the proxy and the book against AWS's bill")
        if data["differences"]:
            print_table(data, rows_key="differences", columns=FINDING_COLUMNS,
                        title="Differences")  # fmt: skip

    emit(ctx.obj, data, rows_key="rows", columns=BILL_COLUMNS, table=tables)
    totals = data["totals"]
    note(
        f"{totals['differences']} difference(s) for {data['period']}: AWS charged "
        f"{totals['aws_cost']}, the price book gives {totals['book_cost_of_aws_usage']} for "
        f"AWS's usage ({'final' if data['final'] else 'not final'})"
    )
    raise typer.Exit(report.exit_code)


def _repair(ctx: typer.Context, day: str | None, customer_id: str | None, yes: bool) -> None:
    from ...services.usage_sources import repair_usage

    if not day:
        raise InvalidInput("--repair needs --day YYYY-MM-DD")

    def confirm(plan) -> bool:
        for_people(ctx.obj, lambda: print_table(plan.to_dict(), rows_key="rows",
                   columns=DIFF_COLUMNS, title=f"Differences on {plan.day}"))  # fmt: skip
        if yes:
            return True
        if not sys.stdin.isatty():
            raise InvalidInput("not a terminal: pass --yes to repair without a prompt")
        question = f"Rewrite the counters of {len(plan.customer_ids)} customer(s) from the log?"
        return typer.confirm(question, default=False, err=True)

    result = repair_usage(ctx.obj, day=day, confirm=confirm, customer_id=customer_id)
    emit(ctx.obj, result.to_dict(), rows_key="rows", columns=DIFF_COLUMNS, table=lambda: None)
    note(
        f"repaired {len(result.customers_repaired)} customer(s), {result.writes} write(s)"
        if result.applied
        else "nothing repaired"
    )
    if result.applied:
        announce_write(ctx.obj)


INVOCATION_COLUMNS = [
    ("customer_id", "Customer"),
    ("day", "Day"),
    ("model", "Model"),
    ("kind", "Difference"),
    ("requests", "Requests"),
    ("proxy_tokens", "Proxy tokens"),
    ("aws_tokens", "AWS tokens"),
    ("token_difference", "AWS - proxy"),
]
REQUEST_COLUMNS = [
    ("customer_id", "Customer"),
    ("day", "Day"),
    ("kind", "Difference"),
    ("bedrock_request_id", "Bedrock request"),
    ("request_id", "Proxy request"),
]


def _against_invocation_logs(ctx, period, start_date, end_date, log_source, log_group,
                             repair, yes) -> None:  # fmt: skip
    from ...services.usage_sources import reconcile_invocation_logs

    def confirm(todo) -> bool:
        rows = [d.to_dict() for d in todo]
        for_people(ctx.obj, lambda: print_table({"rows": rows}, rows_key="rows",
                   columns=REQUEST_COLUMNS, title="To book",
                   console=stderr_console()))  # fmt: skip
        if yes:
            return True
        if not sys.stdin.isatty():
            raise InvalidInput("not a terminal: pass --yes to repair without a prompt")
        question = f"Book {len(todo)} request(s) Bedrock served to their customers?"
        return typer.confirm(question, default=False, err=True)

    with progress("Reconciling with Bedrock's invocation logs", show=False):
        report, result = reconcile_invocation_logs(
            ctx.obj, start_date=start_date, end_date=end_date, period=period,
            source=log_source, log_group=log_group, repair=repair, confirm=confirm,
        )  # fmt: skip
    data = report.to_dict()
    if result is not None:
        data["repair"] = result.to_dict()
    for warning in data["warnings"]:
        note(f"warning: {warning}")

    def tables() -> None:
        print_table(data, rows_key="rows", columns=INVOCATION_COLUMNS, title="Differences")
        if data["requests"]:
            print_table(data, rows_key="requests", columns=REQUEST_COLUMNS, title="Requests")

    emit(ctx.obj, data, rows_key="rows", columns=INVOCATION_COLUMNS, table=tables)
    totals = data["totals"]
    note(
        f"{totals['differences']} difference(s): {totals['unrecorded']} served by Bedrock and "
        f"not recorded, {totals['not_in_aws_log']} recorded and not in Bedrock's log, "
        f"{totals['tokens']} with other token counts; {data['start_date']} to "
        f"{data['end_date']} (invocation logs: {data['source']}, {data['engine']})"
    )
    if totals["untagged_invocations"]:
        note(f"{totals['untagged_invocations']} invocation(s) without this installation's tag "
             "(other callers in the account and region) were left out")  # fmt: skip
    if result is not None:
        note(
            f"repair: booked {len(result.booked)} request(s), {result.lines} log line(s) written"
            if result.applied
            else "repair: nothing booked"
        )
        if result.applied:
            announce_write(ctx.obj)
            # What it booked is settled (the next run shows it); what it cannot book is not.
            raise typer.Exit(EXIT_DIFFERENCES if result.skipped else 0)
    raise typer.Exit(report.exit_code)
