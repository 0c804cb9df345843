"""The ``audit`` group: read the audit trail, and verify its hash chain."""

from __future__ import annotations

from typing import Annotated

import typer

from ...services import audit as svc
from ..app import app
from ..render import emit, error_line

audit_app = typer.Typer(
    help="The audit trail of every state change: read it, verify its chain.",
    invoke_without_command=True,
)
app.add_typer(audit_app, name="audit")

AUDIT_COLUMNS = [
    ("seq", "#"),
    ("at", "When"),
    ("who", "Who"),
    ("action", "Action"),
    ("customer", "Customer"),
    ("key_id", "Key"),
    ("command", "Command"),
]
CSV_COLUMNS = AUDIT_COLUMNS + [("before", "before"), ("after", "after"), ("hash", "hash")]


@audit_app.callback()
def audit(
    ctx: typer.Context,
    customer_id: Annotated[
        str | None, typer.Option("--customer-id", help="Only this customer's records.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this day, YYYY-MM-DD.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only actions starting so, e.g. key.")
    ] = None,
) -> None:
    """List audit records, oldest first (table, JSON or CSV)."""
    if ctx.invoked_subcommand is not None:
        return
    rows = svc.list_audit(ctx.obj, customer_id=customer_id, since=since, action=action)
    columns = CSV_COLUMNS if ctx.obj.output == "csv" else AUDIT_COLUMNS
    emit(ctx.obj, {"records": rows}, rows_key="records", columns=columns, title="Audit trail")


@audit_app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Check the hash chain and its head: a deleted or edited record is named; exit 1."""
    report = svc.verify(ctx.obj)
    emit(ctx.obj, report, columns=[("ok", "OK"), ("records", "Records"), ("problems", "Problems")])
    if not report["ok"]:
        for problem in report["problems"]:
            error_line(f"audit trail: {problem}")
        raise typer.Exit(1)
