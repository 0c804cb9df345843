"""Commands that manage the installation's stack: deploy, status, destroy."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ...core.errors import InvalidInput
from ..app import app
from ..render import emit, note, stderr_console

CHANGE_COLUMNS = [
    ("action", "Action"),
    ("logical_id", "Resource"),
    ("resource_type", "Type"),
    ("replacement", "Replacement"),
]
OUTPUT_COLUMNS = [("key", "Output"), ("value", "Value")]


def _deploy_config(ctx, **options):
    from ...deploy.config import DeployConfig

    prices = options.pop("prices")
    if prices is not None:
        try:
            options["prices_json"] = Path(prices).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read the price file {prices}: {exc.strerror}") from None
    return DeployConfig(
        stage=ctx.obj.stage,
        table_prefix=ctx.obj.table_prefix,
        stack_name_override=ctx.obj.stack_name,
        **options,
    )


def _show_changes(changes) -> None:
    from rich.table import Table

    table = Table(title="Changes")
    for _, header in CHANGE_COLUMNS:
        table.add_column(header)
    for c in changes:
        table.add_row(c.action, c.logical_id, c.resource_type, c.replacement or "")
    stderr_console().print(table)


def _ask(question: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise InvalidInput("not a terminal: pass --yes to go ahead without a prompt")
    return typer.confirm(question, default=False, err=True)


def _print_event(event) -> None:
    reason = f"  {event.reason}" if event.reason else ""
    note(f"{event.status:<28} {event.logical_id} ({event.resource_type}){reason}")


def _outputs_rows(outputs: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(outputs.items())]


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    model: list[str] = typer.Option(
        None, "--model", help="Model or inference profile id the proxy may invoke (repeat)."
    ),
    memory: int = typer.Option(512, "--memory", help="Proxy memory, MB."),
    timeout: int = typer.Option(60, "--timeout", help="Proxy timeout, seconds."),
    auth_cache_seconds: int = typer.Option(
        30,
        "--auth-cache-seconds",
        help="How long the proxy caches a token lookup (0-300): a revoked token works that long.",
    ),
    cors_origin: list[str] = typer.Option(
        None, "--cors-origin", help="Browser origin allowed to call the API (repeat)."
    ),
    prices: str = typer.Option(
        None, "--prices", help="JSON price book for the budget limit (proxy environment)."
    ),
    log_retention_days: int = typer.Option(
        30, "--log-retention-days", help="Days the proxy's CloudWatch log group keeps lines."
    ),
    throttle_rate: float = typer.Option(50.0, "--throttle-rate", help="API requests/second."),
    throttle_burst: int = typer.Option(100, "--throttle-burst", help="API burst requests."),
    alarm_topic: str = typer.Option(
        None, "--alarm-topic", help="SNS topic ARN for alarms (default: keep the current one)."
    ),
    waf_rate_limit: int = typer.Option(
        None,
        "--waf-rate-limit",
        help="Add an AWS WAF web ACL blocking an IP over N requests per 5 minutes "
        "(about $6/month + $0.60 per million requests; see docs/deploy.md).",
    ),
    reserved_concurrency: int = typer.Option(
        None, "--reserved-concurrency", help="Reserve N concurrent executions for the proxy."
    ),
    access_logs: bool = typer.Option(
        False, "--access-logs", help="API Gateway access logs (needs the account's log role)."
    ),
    customer_metrics: bool = typer.Option(
        False,
        "--customer-metrics",
        help="Per-customer CloudWatch metrics (3 per active customer, ~$0.90/month each).",
    ),
    quicksight: bool = typer.Option(
        False,
        "--quicksight",
        help="Add a QuickSight data source and data set over the usage log (QuickSight is "
        "billed per user; see docs/metrics.md).",
    ),
    quicksight_principal: str = typer.Option(
        None, "--quicksight-principal", help="QuickSight user or group ARN that owns them."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the changes, apply nothing."),
    template_out: Path = typer.Option(
        None, "--template-out", help="Write the template to FILE and stop (no AWS call)."
    ),
) -> None:
    """Package the proxy and deploy the stack through a change set. Without --model, the
    models of the stage's last deploy (from the config file) are kept."""
    models = tuple(model or ())
    if not models and ctx.obj.deploy_models:
        models = tuple(m for m in ctx.obj.deploy_models.split(",") if m)
        note(f"Models from the last deploy of {ctx.obj.stage}: {', '.join(models)}")
    cfg = _deploy_config(
        ctx,
        models=models,
        memory_mb=memory,
        timeout_seconds=timeout,
        auth_cache_seconds=auth_cache_seconds,
        cors_origins=tuple(cors_origin or ()),
        prices=prices,
        log_retention_days=log_retention_days,
        throttle_rate=throttle_rate,
        throttle_burst=throttle_burst,
        waf_rate_limit=waf_rate_limit,
        reserved_concurrency=reserved_concurrency,
        access_logs=access_logs,
        customer_metrics=customer_metrics,
        quicksight=quicksight,
        quicksight_principal=quicksight_principal,
    )
    if template_out is not None:
        from ...deploy.template import write_template

        write_template(cfg, template_out)
        note(f"Wrote the template to {template_out}")
        return
    if not (yes or dry_run or sys.stdin.isatty()):
        raise InvalidInput("not a terminal: pass --yes to apply without a prompt")
    from ...deploy import deployer

    def confirm(changes) -> bool:
        _show_changes(changes)
        return _ask(f"Apply these {len(changes)} change(s) to {cfg.stack_name}?", yes)

    result = deployer.deploy(
        cfg,
        session=ctx.obj.session(),
        endpoint_url=ctx.obj.endpoint_url,
        confirm=confirm,
        on_event=_print_event,
        notify=note,
        dry_run=dry_run,
        alarm_topic_arn=alarm_topic,
        config_path=ctx.obj.config_file,
    )
    if result.outcome == "dry-run" and ctx.obj.output == "table":
        _show_changes(result.changes)
    payload = {
        "stack_name": result.stack_name,
        "outcome": result.outcome,
        "changes": [{c[0]: getattr(ch, c[0]) for c in CHANGE_COLUMNS} for ch in result.changes],
        "adopted": result.adopted,
        "outputs": _outputs_rows(result.outputs),
        "config_file": str(result.config_path) if result.config_path else None,
    }
    if ctx.obj.output == "table":
        if result.outputs:
            emit(ctx.obj, payload, rows_key="outputs", columns=OUTPUT_COLUMNS, title="Outputs")
        note(f"Stack {result.stack_name}: {result.outcome}")
        if result.config_path:
            note(f"Configuration written to {result.config_path}")
    else:
        emit(ctx.obj, payload, rows_key="outputs", columns=OUTPUT_COLUMNS)


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Show the stack's status and outputs."""
    from ...deploy import deployer

    name = ctx.obj.stack_name or f"{ctx.obj.table_prefix}-{ctx.obj.stage}"
    info = deployer.stack_status(name, session=ctx.obj.session(), endpoint_url=ctx.obj.endpoint_url)
    payload = {
        "stack_name": info.stack_name,
        "exists": info.exists,
        "status": info.status or "NOT_DEPLOYED",
        "reason": info.reason,
        "last_updated": info.last_updated,
        "outputs": _outputs_rows(info.outputs),
    }
    if ctx.obj.output == "table":
        emit(
            ctx.obj,
            payload,
            columns=[("stack_name", "Stack"), ("status", "Status"), ("reason", "Reason"),
                     ("last_updated", "Last updated")],
        )  # fmt: skip
        if info.outputs:
            emit(ctx.obj, payload, rows_key="outputs", columns=OUTPUT_COLUMNS, title="Outputs")
    else:
        emit(ctx.obj, payload, rows_key="outputs", columns=OUTPUT_COLUMNS)


@app.command("destroy")
def destroy(
    ctx: typer.Context,
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking."),
    delete_data: bool = typer.Option(
        False, "--delete-data", help="Also delete the tables and the usage-log bucket."
    ),
) -> None:
    """Delete the stack; the tables and the usage bucket are kept unless --delete-data."""
    from ...deploy import deployer

    name = ctx.obj.stack_name or f"{ctx.obj.table_prefix}-{ctx.obj.stage}"

    def confirm(plan) -> bool:
        verb = "DELETED" if plan.delete_data else "kept"
        note(f"Stack {plan.stack_name} will be deleted. These will be {verb}:")
        for item in plan.kept:
            note(f"  {item}")
        return _ask(f"Delete stack {plan.stack_name}?", yes)

    result = deployer.destroy(
        name,
        session=ctx.obj.session(),
        endpoint_url=ctx.obj.endpoint_url,
        confirm=confirm,
        on_event=_print_event,
        notify=note,
        delete_data=delete_data,
    )
    emit(
        ctx.obj,
        {
            "stack_name": result.stack_name,
            "outcome": result.outcome,
            "kept": result.kept,
            "data_deleted": result.data_deleted,
        },
        columns=[("stack_name", "Stack"), ("outcome", "Outcome"), ("kept", "Kept"),
                 ("data_deleted", "Deleted data")],
    )  # fmt: skip
