"""Commands for customers and their tokens: init, create, list, show, update, suspend,
reactivate, update-token, revoke-token, update-limits."""

from __future__ import annotations

import typer

from ...core.errors import EXIT_PARTIAL, InvalidInput
from ...services import customers as svc
from ..app import app
from ..render import emit, note, progress

CUSTOMER_COLUMNS = [
    ("customer_id", "Customer ID"),
    ("name", "Name"),
    ("email", "Email"),
    ("status", "Status"),
    ("plan", "Plan"),
    ("limits.daily_request_limit", "Daily limit"),
    ("token_expires_at", "Token expires"),
    ("created_at", "Created"),
]
DETAIL_COLUMNS = [
    ("customer_id", "Customer ID"),
    ("name", "Name"),
    ("email", "Email"),
    ("status", "Status"),
    ("plan", "Plan"),
    ("created_at", "Created"),
    ("updated_at", "Updated"),
    ("token_expires_at", "Token expires"),
    ("limits.daily_request_limit", "Daily request limit"),
    ("limits.monthly_token_limit", "Monthly token limit"),
    ("limits.requests_per_minute", "Requests per minute"),
    ("limits.monthly_budget", "Monthly budget"),
    ("limits.allowed_models", "Allowed models"),
    ("limits.allowed_cidrs", "Allowed CIDRs"),
    ("pricing_overrides", "Pricing overrides"),
]
CUSTOMER_ID = typer.Option(..., "--customer-id", help="The customer's UUID.")


def _unlimited_note(settings) -> None:
    if settings.output == "table":
        note("Unset limits are unlimited.")


@app.command("init")
def init(ctx: typer.Context) -> None:
    """Create this stage's DynamoDB tables if they are missing (safe to run twice)."""
    rows = svc.init_tables(ctx.obj, notify=note)
    emit(
        ctx.obj,
        {"tables": rows},
        rows_key="tables",
        columns=[("role", "Role"), ("table", "Table"), ("status", "Status")],
    )


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Option(None, "--name", help="Customer name (required without --from-csv)."),
    email: str = typer.Option(None, "--email", help="Billing contact email."),
    token: str = typer.Option(
        None, "--token", help="Use this token (>=128 bits of entropy) instead of a generated one."
    ),
    expires_in: str = typer.Option(None, "--expires-in", help="Token lifetime, e.g. 90d."),
    daily_limit: str = typer.Option(None, "--daily-limit", help="Requests per UTC day."),
    plan: str = typer.Option(None, "--plan", help="Price book plan for invoices."),
    price_book: str = typer.Option(
        None, "--price-book", help="Price book that defines --plan (default: the config's)."
    ),
    from_csv: str = typer.Option(
        None, "--from-csv", help="Create one customer per row: name,email[,daily_limit,plan,...]."
    ),
    tokens_file: str = typer.Option(
        None, "--tokens-file", help="With --from-csv: a new file (mode 0600) for the tokens."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --from-csv: check each row only."),
) -> None:
    """Create a customer and its Bearer token (shown once, never stored), or many from CSV."""
    if from_csv:
        _bulk_create(ctx, from_csv, tokens_file, dry_run, price_book, name or email or token)
        return
    if not name or not email:
        missing = "--name" if not name else "--email"
        raise InvalidInput(f"Missing option '{missing}' (or --from-csv FILE); see --help")
    result = svc.create_customer(
        ctx.obj,
        name=name,
        email=email,
        token=token,
        expires_in=expires_in,
        daily_limit=daily_limit,
        plan=plan,
        price_book=price_book,
        notify=note,
    )
    emit(
        ctx.obj,
        result,
        columns=[("customer_id", "Customer ID"), ("token", "Token")]
        + [c for c in DETAIL_COLUMNS[1:] if c[0] in ("name", "email", "plan", "token_expires_at")]
        + [("limits.daily_request_limit", "Daily request limit")],
    )
    if ctx.obj.output == "table":
        note("The token is shown once and is not stored: give it to the customer now.")


BULK_COLUMNS = [
    ("row", "Row"),
    ("name", "Name"),
    ("customer_id", "Customer ID"),
    ("result", "Result"),
    ("error", "Error"),
]


def _bulk_report(ctx, report: dict) -> None:
    emit(ctx.obj, report, rows_key="results", columns=BULK_COLUMNS, title="Rows")
    note(
        f"{report['succeeded']} of {report['rows']} row(s) "
        f"{'would succeed' if report['dry_run'] else 'applied'}; {report['failed']} failed."
    )
    if report["failed"]:
        raise typer.Exit(EXIT_PARTIAL)


def _bulk_create(ctx, path, tokens_file, dry_run, price_book, single) -> None:
    from ...services.bulk import create_from_csv

    if single:
        raise InvalidInput("--from-csv takes the customers from the file: drop --name/--email")
    with progress("Creating customers", show=not dry_run) as update:
        report = create_from_csv(
            ctx.obj, path, tokens_file=tokens_file, dry_run=dry_run, price_book=price_book,
            progress=update,
        )  # fmt: skip
    if not dry_run:
        where = report["tokens_file"]
        note(f"Tokens written to {where} (mode 0600): hand them over, then delete it.")
    _bulk_report(ctx, report)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: str = typer.Option(None, "--status", help="active or suspended."),
    expiring_within: str = typer.Option(
        None, "--expiring-within", help="Only tokens expiring within this time, e.g. 14d."
    ),
    limit: int = typer.Option(None, "--limit", help="Show at most this many."),
    page_size: int = typer.Option(
        None, "--page-size", min=1, help="Items per DynamoDB Scan page (all pages are read)."
    ),
) -> None:
    """List every customer (all pages of the table), sorted by name."""
    rows = svc.list_customers(
        ctx.obj, status=status, expiring_within=expiring_within, limit=limit, page_size=page_size
    )
    emit(
        ctx.obj,
        {"customers": rows, "count": len(rows)},
        rows_key="customers",
        columns=CUSTOMER_COLUMNS,
        title=f"{len(rows)} customer(s)",
    )


@app.command("show")
def show(
    ctx: typer.Context, customer_id: str = typer.Argument(..., help="The customer's UUID.")
) -> None:
    """Show one customer: limits, plan, token prefixes and their states, dates."""
    result = svc.show_customer(ctx.obj, customer_id)
    emit(ctx.obj, result, columns=DETAIL_COLUMNS, title=result["name"])
    for problem in result["record_problems"]:
        note(f"warning: the proxy refuses this customer until this is fixed: {problem}")
    if ctx.obj.output == "table" and result["tokens"]:
        emit(
            ctx.obj,
            result,
            rows_key="tokens",
            title="Tokens",
            columns=[
                ("prefix", "Prefix"),
                ("role", "Role"),
                ("state", "State"),
                ("created_at", "Created"),
                ("expires_at", "Expires"),
                ("grace_until", "Grace until"),
            ],
        )


@app.command("update")
def update(
    ctx: typer.Context,
    customer_id: str = CUSTOMER_ID,
    name: str = typer.Option(None, "--name"),
    email: str = typer.Option(None, "--email"),
    plan: str = typer.Option(None, "--plan", help="New plan, from the next period."),
    price_book: str = typer.Option(
        None, "--price-book", help="Price book that defines --plan (default: the config's)."
    ),
    pricing_overrides: str = typer.Option(
        None, "--pricing-overrides", help="JSON/TOML file: this customer's discounts, prices."
    ),
    clear_pricing_overrides: bool = typer.Option(
        False, "--clear-pricing-overrides", help="Back to the plan's own prices."
    ),
) -> None:
    """Change a customer's name, email, plan (from next month) or own pricing overrides."""
    result = svc.update_customer(
        ctx.obj,
        customer_id,
        name=name,
        email=email,
        plan=plan,
        price_book=price_book,
        pricing_overrides=pricing_overrides,
        clear_pricing_overrides=clear_pricing_overrides,
    )
    emit(ctx.obj, result, columns=DETAIL_COLUMNS)


@app.command("suspend")
def suspend(ctx: typer.Context, customer_id: str = CUSTOMER_ID) -> None:
    """Suspend a customer: the proxy refuses its tokens until reactivated."""
    emit(ctx.obj, svc.set_status(ctx.obj, customer_id, "suspended"), columns=DETAIL_COLUMNS[:4])


@app.command("reactivate")
def reactivate(ctx: typer.Context, customer_id: str = CUSTOMER_ID) -> None:
    """Reactivate a suspended customer."""
    emit(ctx.obj, svc.set_status(ctx.obj, customer_id, "active"), columns=DETAIL_COLUMNS[:4])


@app.command("update-token")
def update_token(
    ctx: typer.Context,
    customer_id: str = CUSTOMER_ID,
    token: str = typer.Option(None, "--token", help="Use this token instead of a generated one."),
    grace_period: str = typer.Option(
        "24h", "--grace-period", help="How long the old token keeps working (0 = stop now)."
    ),
    expires_in: str = typer.Option(None, "--expires-in", help="New token's lifetime, e.g. 90d."),
) -> None:
    """Rotate a customer's token; the new one is shown once."""
    result = svc.rotate_token(
        ctx.obj, customer_id, token=token, grace_period=grace_period, expires_in=expires_in
    )
    emit(
        ctx.obj,
        result,
        columns=[
            ("customer_id", "Customer ID"),
            ("token", "New token"),
            ("expires_at", "Expires"),
            ("previous_token_prefix", "Previous token"),
            ("previous_valid_until", "Previous valid until"),
        ],
    )
    if ctx.obj.output == "table":
        note("The new token is shown once and is not stored: give it to the customer now.")


@app.command("revoke-token")
def revoke_token(
    ctx: typer.Context,
    customer_id: str = CUSTOMER_ID,
    previous_only: bool = typer.Option(
        False, "--previous-only", help="Revoke only the token still in its grace period."
    ),
) -> None:
    """Revoke a customer's token(s); the proxy refuses them within its auth cache time (30 s by
    default)."""
    result = svc.revoke_token(ctx.obj, customer_id, previous_only=previous_only)
    emit(
        ctx.obj,
        result,
        columns=[("customer_id", "Customer ID"), ("revoked", "Revoked"), ("revoked_at", "At")],
    )


@app.command("update-limits")
def update_limits(
    ctx: typer.Context,
    customer_id: str = typer.Option(
        None, "--customer-id", help="The customer's UUID (required without --from-csv)."
    ),
    daily_limit: str = typer.Option(None, "--daily-limit", help="Requests per UTC day."),
    monthly_token_limit: str = typer.Option(
        None, "--monthly-token-limit", help="Input+output+cache tokens per UTC month."
    ),
    requests_per_minute: str = typer.Option(None, "--requests-per-minute", help="Per UTC minute."),
    monthly_budget: str = typer.Option(
        None, "--monthly-budget", help="Estimated spend per month, e.g. 500.00."
    ),
    allowed_models: list[str] = typer.Option(
        None, "--allowed-models", help="Model ids (repeat or comma-separate); 'all' clears."
    ),
    allowed_cidrs: list[str] = typer.Option(
        None,
        "--allowed-cidrs",
        help="Source addresses allowed, CIDRs (IPv4/IPv6; repeat or comma-separate); 'any' clears.",
    ),
    from_csv: str = typer.Option(
        None, "--from-csv", help="One customer per row: customer_id and limit columns."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --from-csv: check each row only."),
) -> None:
    """Set limits the proxy enforces; 'unlimited' clears one. Unset means unlimited."""
    if from_csv:
        from ...services.bulk import update_limits_from_csv

        if customer_id:
            raise InvalidInput("--from-csv takes the customers from the file: drop --customer-id")
        _bulk_report(ctx, update_limits_from_csv(ctx.obj, from_csv, dry_run=dry_run))
        return
    if not customer_id:
        raise InvalidInput("give --customer-id ID (or --from-csv FILE)")
    result = svc.update_limits(
        ctx.obj,
        customer_id,
        daily_request_limit=daily_limit,
        monthly_token_limit=monthly_token_limit,
        requests_per_minute=requests_per_minute,
        monthly_budget=monthly_budget,
        allowed_models=allowed_models or None,
        allowed_cidrs=allowed_cidrs or None,
    )
    emit(ctx.obj, result, columns=DETAIL_COLUMNS)
    _unlimited_note(ctx.obj)
