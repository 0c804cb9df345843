"""Commands that read usage: usage (counters or log) and reconcile (counters vs log)."""

from __future__ import annotations

import sys

import typer

from ...core.errors import InvalidInput
from ..app import app
from ..render import bar_chart, emit, note, progress, stdout_console, to_json

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
ROW_COLUMNS = [("customer_id", "Customer"), ("day", "Day"), ("model", "Model")] + COUNT_COLUMNS
CSV_COLUMNS = ROW_COLUMNS + [("total_tokens", "Total tokens")]  # a row's every field, in order
DIFF_COLUMNS = [
    ("customer_id", "Customer"),
    ("day", "Day"),
    ("model", "Model"),
    ("counter", "Counter"),
    ("counters_value", "Counters"),
    ("log_value", "Log"),
    ("difference", "Difference"),
]
PERIOD = typer.Option(None, "--period", help="A month, YYYY-MM.")
START = typer.Option(None, "--start-date", help="YYYY-MM-DD, inclusive (default: 1st of month).")
END = typer.Option(None, "--end-date", help="YYYY-MM-DD, inclusive (default: today).")


def _usage_per_key(ctx, customer_id, start_date, end_date, period) -> None:
    from ...services.keys import key_usage
    from .keys import emit_key_usage

    if not customer_id:
        raise InvalidInput("--group-by key needs --customer-id")
    report = key_usage(
        ctx.obj, customer_id, start_date=start_date, end_date=end_date, period=period
    )
    emit_key_usage(ctx.obj, report)


@app.command("usage")
def usage(
    ctx: typer.Context,
    customer_id: str = typer.Option(None, "--customer-id", help="One customer."),
    all_customers: bool = typer.Option(False, "--all", help="Every customer."),
    start_date: str = START,
    end_date: str = END,
    period: str = PERIOD,
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
        _usage_per_key(ctx, customer_id, start_date, end_date, period)
        return

    with progress("Reading usage", show=all_customers or source == "athena") as update:
        report = report_usage(
            ctx.obj,
            customer_id=customer_id,
            all_customers=all_customers,
            start_date=start_date,
            end_date=end_date,
            period=period,
            group_by=group_by,
            source=source,
            progress=update,
        )
    data = report.to_dict()
    for warning in data["warnings"]:
        note(f"warning: {warning}")
    if ctx.obj.output != "table":
        emit(ctx.obj, data, rows_key="rows", columns=CSV_COLUMNS)
        return
    title = (
        f"Usage {data['start_date']} to {data['end_date']} "
        f"({data['source']}, {data['customer_count']} customer(s))"
    )
    hidden = _hidden(data["group_by"], data["totals"])
    columns = [c for c in ROW_COLUMNS if c[0] not in hidden]
    rows = [dict(r, customer_id=_short(r["customer_id"])) for r in data["rows"]]
    emit(ctx.obj, {"rows": rows}, rows_key="rows", columns=columns, title=title)
    totals = [c for c in COUNT_COLUMNS if c[0] not in hidden]
    emit(ctx.obj, {"rows": [data["totals"]]}, rows_key="rows", columns=totals, title="Totals")
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


def _short(customer_id: str) -> str:
    return customer_id[:8] + "…"


@app.command("reconcile")
def reconcile(
    ctx: typer.Context,
    period: str = PERIOD,
    start_date: str = START,
    end_date: str = END,
    customer_id: str = typer.Option(None, "--customer-id", help="One customer (default: all)."),
    repair: bool = typer.Option(
        False, "--repair", help="Rebuild a past day's counters from the log (asks first)."
    ),
    day: str = typer.Option(None, "--day", help="The day to repair, YYYY-MM-DD."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Repair without asking."),
) -> None:
    """Compare the proxy's counters with the request log; exit 5 on any difference."""
    from ...services.usage_sources import reconcile_usage, repair_usage

    if repair:
        if not day:
            raise InvalidInput("--repair needs --day YYYY-MM-DD")

        def confirm(plan) -> bool:
            if ctx.obj.output == "table":
                title = f"Differences on {plan.day}"
                emit(ctx.obj, plan.to_dict(), rows_key="rows", columns=DIFF_COLUMNS, title=title)
            if yes:
                return True
            if not sys.stdin.isatty():
                raise InvalidInput("not a terminal: pass --yes to repair without a prompt")
            question = f"Rewrite the counters of {len(plan.customer_ids)} customer(s) from the log?"
            return typer.confirm(question, default=False, err=True)

        result = repair_usage(ctx.obj, day=day, confirm=confirm, customer_id=customer_id)
        if ctx.obj.output == "json":
            typer.echo(to_json(result.to_dict()))
        note(
            f"repaired {len(result.customers_repaired)} customer(s), {result.writes} write(s)"
            if result.applied
            else "nothing repaired"
        )
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
    diffs = data["totals"]["differences"]
    note(
        f"{diffs} difference(s) over {data['customers_checked']} customer(s), "
        f"{data['start_date']} to {data['end_date']} (log: {data['log_source']})"
    )
    raise typer.Exit(report.exit_code)
