"""Commands that manage the installation's stack: deploy, status, destroy."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ...core.errors import InvalidInput
from ...deploy.config import DEFAULT_TIMEOUT_SECONDS
from ..app import announce_write, app
from ..options import Yes
from ..render import emit, for_people, note, print_table, stderr_console

CHANGE_COLUMNS = [
    ("action", "Action"),
    ("logical_id", "Resource"),
    ("resource_type", "Type"),
    ("replacement", "Replacement"),
]
OUTPUT_COLUMNS = [("key", "Output"), ("value", "Value")]
STATUS_COLUMNS = [
    ("stack_name", "Stack"),
    ("region", "Region"),
    ("status", "Status"),
    ("reason", "Reason"),
    ("last_updated", "Last updated"),
]


def _deploy_config(ctx, **options):
    from ...deploy.config import DeployConfig

    prices = options.pop("prices")
    if prices is not None:
        try:
            options["prices_json"] = Path(prices).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read the price file {prices}: {exc.strerror}") from None
    names = options.pop("model_names")
    if names is not None:
        try:
            options["model_names_json"] = Path(names).read_text(encoding="utf-8")
        except OSError as exc:
            message = f"cannot read the model names file {names}: {exc.strerror}"
            raise InvalidInput(message) from None
    return DeployConfig(
        stage=ctx.obj.stage,
        table_prefix=ctx.obj.table_prefix,
        stack_name_override=ctx.obj.stack_name,
        **options,
    )


def _change_rows(changes) -> list[dict]:
    return [{key: getattr(change, key) for key, _ in CHANGE_COLUMNS} for change in changes]


def _show_changes(changes) -> None:
    """The changes before a prompt: on stderr, so stdout keeps only the result."""
    print_table({"changes": _change_rows(changes)}, rows_key="changes", columns=CHANGE_COLUMNS,
                title="Changes", console=stderr_console())  # fmt: skip


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
    timeout: int = typer.Option(
        DEFAULT_TIMEOUT_SECONDS,
        "--timeout",
        help="Proxy timeout, seconds (3-900): Lambda's and API Gateway's, the longest request.",
    ),
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
    model_names: str = typer.Option(
        None,
        "--model-names",
        help="JSON file of extra model names -> Bedrock ids for the proxy (docs/proxy.md).",
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
    no_charge_undelivered: bool = typer.Option(
        False,
        "--no-charge-undelivered",
        help="Do not charge generations the client never received in full (recorded anyway).",
    ),
    invocation_logs: str = typer.Option(
        None,
        "--invocation-logs",
        help="metadata: turn on Bedrock's model invocation logging for the region, no prompts "
        "or answers, to the log bucket (reconcile --against invocation-logs); off. Default: "
        "the last deploy's.",
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace another invocation-logging configuration of the region."
    ),
    yes: Yes = False,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Compare with the deployed template; no AWS write at all."
    ),
    preview: bool = typer.Option(
        False, "--preview", help="CloudFormation's change-set preview (writes, then cleans up)."
    ),
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
        model_names=model_names,
        log_retention_days=log_retention_days,
        throttle_rate=throttle_rate,
        throttle_burst=throttle_burst,
        waf_rate_limit=waf_rate_limit,
        reserved_concurrency=reserved_concurrency,
        access_logs=access_logs,
        customer_metrics=customer_metrics,
        quicksight=quicksight,
        quicksight_principal=quicksight_principal,
        charge_undelivered=not no_charge_undelivered,
        invocation_logs=invocation_logs or ctx.obj.invocation_logs or "off",
    )
    if template_out is not None:
        from ...deploy.template import write_template

        write_template(cfg, template_out)
        note(f"Wrote the template to {template_out}")
        return
    if dry_run and preview:
        raise InvalidInput("give --dry-run (no write) or --preview (a change set), not both")
    if not (yes or dry_run or preview or sys.stdin.isatty()):
        raise InvalidInput("not a terminal: pass --yes to apply without a prompt")
    from ...deploy import deployer

    def confirm(changes) -> bool:
        _show_changes(changes)
        return _ask(f"Apply these {len(changes)} change(s) to {cfg.stack_name}?", yes)

    result = deployer.deploy(
        cfg, session=ctx.obj.session(), endpoint_url=ctx.obj.endpoint_url, settings=ctx.obj,
        confirm=confirm, on_event=_print_event, notify=note, dry_run=dry_run, preview=preview,
        alarm_topic_arn=alarm_topic, config_path=ctx.obj.config_file,
        force_invocation_logs=force,
    )  # fmt: skip
    _render_deploy(ctx.obj, result)
    if result.outcome in ("created", "updated"):
        announce_write(ctx.obj)


def _render_deploy(settings, result) -> None:
    payload = {
        "stack_name": result.stack_name,
        "region": result.region,
        "outcome": result.outcome,
        "changes": _change_rows(result.changes),
        "adopted": result.adopted,
        "outputs": _outputs_rows(result.outputs),
        "config_file": str(result.config_path) if result.config_path else None,
        "invocation_logging": vars(result.invocation_logging)
        if result.invocation_logging
        else None,
    }
    previewed = result.outcome in ("dry-run", "preview")

    def tables() -> None:
        if previewed:
            print_table(payload, rows_key="changes", columns=CHANGE_COLUMNS, title="Changes")
        if result.outputs:
            print_table(payload, rows_key="outputs", columns=OUTPUT_COLUMNS, title="Outputs")

    emit(settings, payload, csv_key="changes" if previewed else "outputs",
         csv_columns=CHANGE_COLUMNS if previewed else OUTPUT_COLUMNS, table=tables)  # fmt: skip
    for_people(settings, lambda: note(f"Stack {result.stack_name} ({result.region}): "
                                      f"{result.outcome}"))  # fmt: skip
    if result.config_path:
        for_people(settings, lambda: note(f"Configuration written to {result.config_path}"))


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Show the stack's status, its region and outputs."""
    from ...deploy import deployer

    name = ctx.obj.stack_name or f"{ctx.obj.table_prefix}-{ctx.obj.stage}"
    info = deployer.stack_status(
        name, session=ctx.obj.session(), endpoint_url=ctx.obj.endpoint_url, settings=ctx.obj
    )
    payload = {
        "stack_name": info.stack_name,
        "region": info.region,
        "exists": info.exists,
        "status": info.status or "NOT_DEPLOYED",
        "reason": info.reason,
        "last_updated": info.last_updated,
        "outputs": _outputs_rows(info.outputs),
    }

    def tables() -> None:
        print_table(payload, columns=STATUS_COLUMNS)
        if info.outputs:
            print_table(payload, rows_key="outputs", columns=OUTPUT_COLUMNS, title="Outputs")

    emit(ctx.obj, payload, columns=STATUS_COLUMNS, table=tables)


@app.command("destroy")
def destroy(
    ctx: typer.Context,
    yes: Yes = False,
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
        name, session=ctx.obj.session(), endpoint_url=ctx.obj.endpoint_url, settings=ctx.obj,
        confirm=confirm, on_event=_print_event, notify=note, delete_data=delete_data,
    )  # fmt: skip
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
    if result.outcome == "deleted":
        announce_write(ctx.obj)
