"""The ``keys`` group: a customer's named keys (create, list, revoke, rotate, usage, migrate)."""

from __future__ import annotations

from typing import Annotated

import typer

from ...services import keys as svc
from ..app import app
from ..render import emit, note

keys_app = typer.Typer(
    help="A customer's named keys: one per application or environment.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

CustomerId = Annotated[
    str, typer.Option("--customer-id", help="The customer's UUID.", show_default=False)
]
KeyId = Annotated[str, typer.Argument(help="The key's id (key_..., or 'default').")]
KEY_COLUMNS = [
    ("key_id", "Key ID"),
    ("name", "Name"),
    ("test", "Test"),
    ("state", "State"),
    ("token_prefix", "Prefix"),
    ("expires_at", "Expires"),
    ("daily_request_limit", "Daily limit"),
    ("allowed_models", "Models"),
    ("allowed_cidrs", "Allowed CIDRs"),
    ("created_at", "Created"),
]
USAGE_COLUMNS = [
    ("key_id", "Key ID"),
    ("key_name", "Name"),
    ("day", "Day"),
    ("requests", "Requests"),
    ("input_tokens", "Input tok"),
    ("output_tokens", "Output tok"),
    ("errors", "Errors"),
    ("test_requests", "Test requests"),
]


@keys_app.command("create")
def create(
    ctx: typer.Context,
    customer_id: CustomerId,
    name: Annotated[str, typer.Option("--name", help="The key's name, e.g. ci or prod.")],
    expires_in: Annotated[str | None, typer.Option("--expires-in", help="e.g. 90d.")] = None,
    allowed_models: Annotated[
        list[str] | None,
        typer.Option("--allowed-models", help="Models this key may use (within the customer's)."),
    ] = None,
    daily_limit: Annotated[
        str | None, typer.Option("--daily-limit", help="This key's requests per UTC day.")
    ] = None,
    allowed_cidrs: Annotated[
        list[str] | None,
        typer.Option("--allowed-cidrs", help="Source addresses allowed (CIDRs, IPv4/IPv6)."),
    ] = None,
    test: Annotated[
        bool, typer.Option("--test", help="A test key: answered by the proxy, never billed.")
    ] = False,
) -> None:
    """Create a named key; its token is shown once, never stored."""
    result = svc.create_key(
        ctx.obj,
        customer_id,
        name=name,
        expires_in=expires_in,
        allowed_models=allowed_models,
        daily_limit=daily_limit,
        allowed_cidrs=allowed_cidrs,
        test=test,
    )
    emit(ctx.obj, result, columns=[("key_id", "Key ID"), ("token", "Token")] + KEY_COLUMNS[1:])
    if ctx.obj.output == "table":
        note("The token is shown once and is not stored: give it to the customer now.")


@keys_app.command("list")
def list_(ctx: typer.Context, customer_id: CustomerId) -> None:
    """List a customer's keys: the default key and the named ones."""
    rows = svc.list_keys(ctx.obj, customer_id)
    emit(ctx.obj, {"keys": rows}, rows_key="keys", columns=KEY_COLUMNS, title="Keys")


@keys_app.command("revoke")
def revoke(ctx: typer.Context, key_id: KeyId, customer_id: CustomerId) -> None:
    """Revoke one key; the customer's other keys keep working."""
    result = svc.revoke_key(ctx.obj, customer_id, key_id)
    emit(ctx.obj, result)


@keys_app.command("rotate")
def rotate(
    ctx: typer.Context,
    key_id: KeyId,
    customer_id: CustomerId,
    grace_period: Annotated[
        str, typer.Option("--grace-period", help="How long the old token keeps working.")
    ] = "24h",
    expires_in: Annotated[str | None, typer.Option("--expires-in", help="e.g. 90d.")] = None,
) -> None:
    """Issue a new token for one key (same id, name and limits)."""
    result = svc.rotate_key(
        ctx.obj, customer_id, key_id, grace_period=grace_period, expires_in=expires_in
    )
    emit(ctx.obj, result)
    if ctx.obj.output == "table":
        note("The token is shown once and is not stored: give it to the customer now.")


@keys_app.command("migrate")
def migrate(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would change; write nothing.")
    ] = False,
) -> None:
    """Make tokens created before keys their customer's default key (safe to run twice)."""
    result = svc.migrate_keys(ctx.obj, dry_run=dry_run)
    emit(
        ctx.obj,
        result,
        rows_key="tokens",
        columns=[("customer_id", "Customer"), ("token_prefix", "Token"), ("result", "Result")],
        title=f"{result['migrated']} token(s) {'to migrate' if dry_run else 'migrated'}",
    )


def emit_key_usage(settings, report: dict) -> None:
    """``usage --group-by key``'s rendering (also used by that command)."""
    emit(settings, report, rows_key="rows", columns=USAGE_COLUMNS, title="Usage per key")
