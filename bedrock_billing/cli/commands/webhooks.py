"""`webhooks`: a customer's signed webhook, its deliveries, and redelivery."""

from __future__ import annotations

from typing import Annotated

import typer

from ...core.errors import BillingError
from ..app import announce_write, app
from ..options import CustomerId, OneCustomer
from ..render import emit, hint, note

webhooks_app = typer.Typer(
    help="Signed webhook deliveries of usage events to a customer.", no_args_is_help=True
)
app.add_typer(webhooks_app, name="webhooks")

WEBHOOK_COLUMNS = [("customer_id", "Customer"), ("url", "URL"), ("signing_secret", "Secret")]
DELIVERY_COLUMNS = [
    ("event_id", "Event"),
    ("type", "Type"),
    ("customer_id", "Customer"),
    ("created_at", "Created"),
    ("status", "Status"),
    ("attempts", "Attempts"),
    ("last_status", "Last HTTP"),
    ("last_error", "Last error"),
]


@webhooks_app.command("set")
def webhooks_set(
    ctx: typer.Context,
    customer_id: CustomerId,
    url: Annotated[str, typer.Option("--url", help="https:// URL that receives the events.")],
    allow_private_url: Annotated[
        bool,
        typer.Option(
            "--allow-private-url", help="Allow http:// and private or loopback addresses."
        ),
    ] = False,
) -> None:
    """Set the customer's webhook and make a new signing secret (shown once)."""
    from ...services.notifications import set_webhook

    result = set_webhook(ctx.obj, customer_id, url, allow_private_url=allow_private_url)
    emit(ctx.obj, result, columns=WEBHOOK_COLUMNS)
    hint(ctx.obj, "The signing secret is shown once: give it to the customer now.")
    announce_write(ctx.obj)


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    ctx: typer.Context,
    customer_id: OneCustomer = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only those that gave up.")] = False,
) -> None:
    """Kept events and how their delivery went, oldest first."""
    from ...services.notifications import list_deliveries

    result = list_deliveries(ctx.obj, customer_id=customer_id, failed=failed)
    emit(ctx.obj, result, rows_key="deliveries", columns=DELIVERY_COLUMNS)


@webhooks_app.command("redeliver")
def webhooks_redeliver(
    ctx: typer.Context,
    event_id: Annotated[str, typer.Argument(help="The event id (evt_...).")],
) -> None:
    """Send a kept event again, signed afresh, to the customer's current webhook; exit 1
    when it is not delivered."""
    from ...services.notifications import redeliver

    row = redeliver(ctx.obj, event_id, notify=note)
    emit(ctx.obj, row, columns=DELIVERY_COLUMNS)
    announce_write(ctx.obj)
    if row["status"] != "delivered":
        why = row.get("last_error") or f"HTTP {row.get('last_status')}"
        raise BillingError(f"{event_id} was not delivered ({row['status']}): {why}")
