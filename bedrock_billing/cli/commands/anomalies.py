"""`anomalies`: customers whose day is far from their own baseline (exit 5 when any)."""

from __future__ import annotations

from typing import Annotated

import typer

from ...core.errors import EXIT_DIFFERENCES
from ..app import app
from ..options import Period
from ..render import emit, note

COLUMNS = [
    ("customer_id", "Customer"),
    ("date", "Date"),
    ("kind", "Kind"),
    ("metric", "Metric"),
    ("value", "Value"),
    ("baseline", "Baseline"),
    ("detail", "Detail"),
]


@app.command("anomalies")
def anomalies(
    ctx: typer.Context,
    day: Annotated[
        str | None, typer.Option("--day", help="YYYY-MM-DD (default: yesterday, UTC).")
    ] = None,
    period: Period = None,
    window: Annotated[int, typer.Option("--window", help="Trailing days of baseline.")] = 14,
    notify: Annotated[
        bool, typer.Option("--notify", help="Send each as an anomaly.detected event.")
    ] = False,
) -> None:
    """Usage spikes, new models and error-rate spikes on one day (default yesterday) or on
    each complete day of --period; exit 5 when any is found (cron)."""
    from ...services.anomalies import find_anomalies

    result = find_anomalies(ctx.obj, day=day, period=period, window=window, notify=notify)
    emit(ctx.obj, result, rows_key="anomalies", columns=COLUMNS)
    note(f"{result['count']} anomalies among {result['customers_checked']} customers")
    if result["count"]:
        raise typer.Exit(EXIT_DIFFERENCES)
