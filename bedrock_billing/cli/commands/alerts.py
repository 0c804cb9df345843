"""`alerts`: usage thresholds per customer (the notifier fires each once per window)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..app import announce_write, app
from ..options import CustomerId, OneCustomer
from ..render import emit

alerts_app = typer.Typer(
    help="Usage alerts: thresholds on the daily, token and budget limits.", no_args_is_help=True
)
app.add_typer(alerts_app, name="alerts")

COLUMNS = [
    ("customer_id", "Customer"),
    ("thresholds", "Thresholds %"),
    ("source", "From"),
    ("credits_below", "Credits below"),
    ("webhook_url", "Webhook"),
]
EVENT_COLUMNS = [
    ("event_id", "Event"),
    ("customer_id", "Customer"),
    ("token_prefix", "Token"),
    ("expires_at", "Expires"),
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

    emit(ctx.obj, set_alerts(ctx.obj, customer_id, threshold, credits_below=credits_below),
         columns=COLUMNS)  # fmt: skip
    announce_write(ctx.obj)


@alerts_app.command("clear")
def alerts_clear(ctx: typer.Context, customer_id: CustomerId) -> None:
    """Back to the installation's default thresholds (alert_thresholds in the config)."""
    from ...services.notifications import clear_alerts

    emit(ctx.obj, clear_alerts(ctx.obj, customer_id), columns=COLUMNS)
    announce_write(ctx.obj)


@alerts_app.command("list")
def alerts_list(ctx: typer.Context, customer_id: OneCustomer = None) -> None:
    """Customers with their own thresholds or a webhook (or one customer, with what fired)."""
    from ...services.notifications import list_alerts

    result = list_alerts(ctx.obj, customer_id)
    footer = "Default thresholds: " + ", ".join(f"{t}%" for t in result["default_thresholds"])
    if customer_id:
        fired = result["alerts"][0].get("fired") or []
        footer += "\nFired: " + (", ".join(fired) if fired else "none yet")
    emit(ctx.obj, result, rows_key="alerts", columns=COLUMNS, footer=footer)


@alerts_app.command("daily")
def alerts_daily(
    ctx: typer.Context,
    within: Annotated[int, typer.Option("--within", help="Days before a token expires.")] = 7,
) -> None:
    """The daily run (as the deployed schedule): token.expiring, once per token."""
    from ...services.notifications import run_daily

    emit(ctx.obj, run_daily(ctx.obj, within_days=within), rows_key="events",
         columns=EVENT_COLUMNS)  # fmt: skip
