"""`alerts`: usage thresholds per customer (the notifier fires each once per window)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..app import app
from ..render import emit

alerts_app = typer.Typer(
    help="Usage alerts: thresholds on the daily, token and budget limits.", no_args_is_help=True
)
app.add_typer(alerts_app, name="alerts")

CustomerId = Annotated[
    str, typer.Option("--customer-id", help="The customer's id.", show_default=False)
]
COLUMNS = [
    ("customer_id", "Customer"),
    ("thresholds", "Thresholds %"),
    ("source", "From"),
    ("credits_below", "Credits below"),
    ("webhook_url", "Webhook"),
]


@alerts_app.command("set")
def alerts_set(
    ctx: typer.Context,
    customer_id: CustomerId,
    threshold: Annotated[
        list[str] | None,
        typer.Option("--threshold", help="A percentage of each limit (repeat), e.g. 80."),
    ] = None,
    credits_below: Annotated[
        str | None,
        typer.Option("--credits-below", help="Send credits.low below this prepaid balance."),
    ] = None,
) -> None:
    """Alert a customer at these percentages of each of their limits."""
    from ...services.notifications import set_alerts

    result = set_alerts(ctx.obj, customer_id, threshold, credits_below=credits_below)
    emit(ctx.obj, result, columns=COLUMNS)


@alerts_app.command("clear")
def alerts_clear(ctx: typer.Context, customer_id: CustomerId) -> None:
    """Back to the installation's default thresholds (alert_thresholds in the config)."""
    from ...services.notifications import clear_alerts

    emit(ctx.obj, clear_alerts(ctx.obj, customer_id), columns=COLUMNS)


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    customer_id: Annotated[
        str | None, typer.Option("--customer-id", help="One customer, with what fired.")
    ] = None,
) -> None:
    """Customers with their own thresholds or a webhook (or one customer)."""
    from ...services.notifications import list_alerts

    result = list_alerts(ctx.obj, customer_id)
    footer = "Default thresholds: " + ", ".join(f"{t}%" for t in result["default_thresholds"])
    emit(ctx.obj, result, rows_key="alerts", columns=COLUMNS, footer=footer)


@alerts_app.command("daily")
def alerts_daily(
    ctx: typer.Context,
    within: Annotated[int, typer.Option("--within", help="Days before a token expires.")] = 7,
) -> None:
    """The daily run (as the deployed schedule): token.expiring, once per token."""
    from ...services.notifications import run_daily

    result = run_daily(ctx.obj, within_days=within)
    columns = [
        ("event_id", "Event"),
        ("customer_id", "Customer"),
        ("token_prefix", "Token"),
        ("expires_at", "Expires"),
    ]
    emit(ctx.obj, result, rows_key="events", columns=columns)
