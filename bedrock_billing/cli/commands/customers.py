"""Commands for customers and their tokens: init, create, list, show, update, suspend,
reactivate, update-token, revoke-token, update-limits."""

from __future__ import annotations

import typer

from ...core.errors import EXIT_PARTIAL, InvalidInput
from ...services import customers as svc
from ..app import announce_write, app
from ..options import (
    CUSTOMER_HELP,
    CustomerId,
    DailyLimit,
    ExpiresIn,
    OneCustomer,
    Plan,
    PriceBook,
    Token,
)
from ..render import emit, hint, note, progress

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
    ("limits.allowed_origins", "Allowed origins"),
    ("model_parameters", "Model parameters"),
    ("pricing_overrides", "Pricing overrides"),
]
TOKEN_COLUMNS = [
    ("prefix", "Prefix"),
    ("role", "Role"),
    ("state", "State"),
    ("created_at", "Created"),
    ("expires_at", "Expires"),
    ("grace_until", "Grace until"),
]
CREATED_COLUMNS = [
    ("customer_id", "Customer ID"),
    ("token", "Token"),
    ("name", "Name"),
    ("email", "Email"),
    ("plan", "Plan"),
    ("token_expires_at", "Token expires"),
    ("limits.daily_request_limit", "Daily request limit"),
]
ROTATED_COLUMNS = [
    ("customer_id", "Customer ID"),
    ("token", "New token"),
    ("expires_at", "Expires"),
    ("previous_token_prefix", "Previous token"),
    ("previous_valid_until", "Previous valid until"),
]


@app.command("init")
def init(ctx: typer.Context) -> None:
    """Create this stage's DynamoDB tables if they are missing (safe to run twice), and
    record the stage's region in the config file."""
    rows = svc.init_tables(ctx.obj, notify=note)
    emit(ctx.obj, {"tables": rows}, rows_key="tables",
         columns=[("role", "Role"), ("table", "Table"), ("status", "Status")])  # fmt: skip
    announce_write(ctx.obj)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Option(None, "--name", help="Customer name (required without --from-csv)."),
    email: str = typer.Option(None, "--email", help="Billing contact email."),
    token: Token = None,
    expires_in: ExpiresIn = None,
    daily_limit: DailyLimit = None,
    plan: Plan = None,
    price_book: PriceBook = None,
    from_csv: str = typer.Option(
        None, "--from-csv", help="Create one customer per row: name,email[,daily_limit,plan,...]."
    ),
    tokens_file: str = typer.Option(
        None, "--tokens-file", help="With --from-csv: a new file (mode 0600) for the tokens."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --from-csv: check each row only."),
    inference_profile: list[str] = typer.Option(
        None, "--inference-profile", help="A model to give the customer its own application "
        "inference profile for (tagged with its id); repeatable.",
    ),
) -> None:
    """Create a customer and its Bearer token (shown once, never stored), or many from CSV."""
    from ...core.models import normalise_model_id

    if from_csv:
        if inference_profile:
            raise InvalidInput("--inference-profile applies to one customer: drop --from-csv")
        _bulk_create(ctx, from_csv, tokens_file, dry_run, price_book, name or email or token)
        return
    if not name or not email:
        missing = "--name" if not name else "--email"
        raise InvalidInput(f"Missing option '{missing}' (or --from-csv FILE); see --help")
    for model in inference_profile or []:
        normalise_model_id(model)  # a bad model id is refused before anything is written
    result = svc.create_customer(
        ctx.obj, name=name, email=email, token=token, expires_in=expires_in,
        daily_limit=daily_limit, plan=plan, price_book=price_book, notify=note,
    )  # fmt: skip
    failed = _add_profiles(ctx, result, inference_profile or [])
    emit(ctx.obj, result, columns=CREATED_COLUMNS)
    hint(ctx.obj, "The token is shown once and is not stored: give it to the customer now.")
    announce_write(ctx.obj)
    if failed is not None:  # the customer and its token exist: shown above, then the error
        raise failed


def _add_profiles(ctx, result: dict, models: list[str]):
    from ...core.errors import BillingError
    from ...services.inference_profiles import add_inference_profile

    result["inference_profiles"] = {}
    for model in models:
        try:
            made = add_inference_profile(ctx.obj, result["customer_id"], model)
        except BillingError as exc:
            return exc
        result["inference_profiles"][model] = made["inference_profile_arn"]
    return None


@app.command("add-inference-profile")
def add_inference_profile(
    ctx: typer.Context,
    customer_id: CustomerId,
    model: str = typer.Option(..., "--model", help="Foundation model or cross-Region profile id."),
) -> None:
    """Give a customer its own application inference profile for a model, tagged with its
    id: the proxy calls Bedrock through it, and AWS's bill splits cost by that tag."""
    from ...services.inference_profiles import add_inference_profile as add

    emit(ctx.obj, add(ctx.obj, customer_id, model), columns=[
        ("customer_id", "Customer"), ("model", "Model"),
        ("inference_profile_arn", "Inference profile")])  # fmt: skip
    announce_write(ctx.obj)


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
    max_items: int = typer.Option(
        None, "--max-items", "--limit", help="Show at most this many; the rest are counted."
    ),
    starting_token: str = typer.Option(
        None, "--starting-token", help="Continue after a previous page (its next_token)."
    ),
    page_size: int = typer.Option(
        None, "--page-size", min=1, help="Items per DynamoDB Scan page (all pages are read)."
    ),
) -> None:
    """List customers sorted by name, a page at a time with --max-items (JSON carries
    next_token; pass it back as --starting-token)."""
    page = svc.customer_page(
        ctx.obj, status=status, expiring_within=expiring_within, max_items=max_items,
        starting_token=starting_token, page_size=page_size,
    )  # fmt: skip
    shown = f"{page['count']} of {page['total']}" if page["remaining"] else f"{page['count']}"
    emit(ctx.obj, page, rows_key="customers", columns=CUSTOMER_COLUMNS,
         title=f"{shown} customer(s)")  # fmt: skip
    if page["next_token"]:
        note(f"{page['remaining']} more: --starting-token {page['next_token']}")


@app.command("show")
def show(
    ctx: typer.Context,
    customer: str = typer.Argument(None, help=CUSTOMER_HELP, show_default=False),
    customer_id: OneCustomer = None,
) -> None:
    """Show one customer: limits, plan, token prefixes and their states, dates."""
    if bool(customer) == bool(customer_id):
        raise InvalidInput("give the customer id once: as an argument or with --customer-id")
    result = svc.show_customer(ctx.obj, customer or customer_id)
    for problem in result["record_problems"]:
        note(f"warning: the proxy refuses this customer until this is fixed: {problem}")

    def tables() -> None:
        emit(ctx.obj, result, columns=DETAIL_COLUMNS, title=result["name"])
        if result["tokens"]:
            emit(ctx.obj, result, rows_key="tokens", title="Tokens", columns=TOKEN_COLUMNS)

    emit(ctx.obj, result, columns=DETAIL_COLUMNS, table=tables)


@app.command("update")
def update(
    ctx: typer.Context,
    customer_id: CustomerId,
    name: str = typer.Option(None, "--name"),
    email: str = typer.Option(None, "--email"),
    plan: str = typer.Option(None, "--plan", help="New plan, from the next period."),
    price_book: PriceBook = None,
    pricing_overrides: str = typer.Option(
        None, "--pricing-overrides", help="JSON/TOML file: this customer's discounts, prices."
    ),
    clear_pricing_overrides: bool = typer.Option(
        False, "--clear-pricing-overrides", help="Back to the plan's own prices."
    ),
) -> None:
    """Change a customer's name, email, plan (from next month) or own pricing overrides."""
    result = svc.update_customer(
        ctx.obj, customer_id, name=name, email=email, plan=plan, price_book=price_book,
        pricing_overrides=pricing_overrides, clear_pricing_overrides=clear_pricing_overrides,
    )  # fmt: skip
    emit(ctx.obj, result, columns=DETAIL_COLUMNS)
    announce_write(ctx.obj)


@app.command("suspend")
def suspend(ctx: typer.Context, customer_id: CustomerId) -> None:
    """Suspend a customer: the proxy refuses its tokens until reactivated."""
    emit(ctx.obj, svc.set_status(ctx.obj, customer_id, "suspended"), columns=DETAIL_COLUMNS[:4])
    announce_write(ctx.obj)


@app.command("reactivate")
def reactivate(ctx: typer.Context, customer_id: CustomerId) -> None:
    """Reactivate a suspended customer."""
    emit(ctx.obj, svc.set_status(ctx.obj, customer_id, "active"), columns=DETAIL_COLUMNS[:4])
    announce_write(ctx.obj)


@app.command("update-token")
def update_token(
    ctx: typer.Context,
    customer_id: CustomerId,
    token: Token = None,
    grace_period: str = typer.Option(
        "24h", "--grace-period", help="How long the old token keeps working (0 = stop now)."
    ),
    expires_in: ExpiresIn = None,
) -> None:
    """Rotate a customer's token; the new one is shown once."""
    result = svc.rotate_token(
        ctx.obj, customer_id, token=token, grace_period=grace_period, expires_in=expires_in
    )
    emit(ctx.obj, result, columns=ROTATED_COLUMNS)
    hint(ctx.obj, "The new token is shown once and is not stored: give it to the customer now.")
    announce_write(ctx.obj)


@app.command("revoke-token")
def revoke_token(
    ctx: typer.Context,
    customer_id: CustomerId,
    previous_only: bool = typer.Option(
        False, "--previous-only", help="Revoke only the token still in its grace period."
    ),
) -> None:
    """Revoke a customer's token(s); the proxy refuses them within its auth cache time (30 s by
    default)."""
    result = svc.revoke_token(ctx.obj, customer_id, previous_only=previous_only)
    columns = [("customer_id", "Customer ID"), ("revoked", "Revoked"), ("revoked_at", "At")]
    emit(ctx.obj, result, columns=columns)
    announce_write(ctx.obj)


@app.command("update-limits")
def update_limits(
    ctx: typer.Context,
    customer_id: str = typer.Option(
        None, "--customer-id", help=CUSTOMER_HELP + " Required without --from-csv."
    ),
    daily_limit: DailyLimit = None,
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
    allowed_origins: list[str] = typer.Option(
        None,
        "--allowed-origins",
        help="Browser origins allowed (CORS), scheme://host[:port]; repeat or comma-separate; "
        "'any' clears.",
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
        ctx.obj, customer_id, daily_request_limit=daily_limit,
        monthly_token_limit=monthly_token_limit, requests_per_minute=requests_per_minute,
        monthly_budget=monthly_budget, allowed_models=allowed_models or None,
        allowed_cidrs=allowed_cidrs or None, allowed_origins=allowed_origins or None,
    )  # fmt: skip
    emit(ctx.obj, result, columns=DETAIL_COLUMNS)
    hint(ctx.obj, "Unset limits are unlimited.")
    announce_write(ctx.obj)


@app.command("update-model-parameters")
def update_model_parameters(
    ctx: typer.Context,
    customer_id: CustomerId,
    max_tokens: str = typer.Option(
        None, "--max-tokens", help="Default max_tokens when a request sets none; 'unset' clears."
    ),
    max_tokens_cap: str = typer.Option(
        None, "--max-tokens-cap", help="The most max_tokens a request may ask; 'unset' clears."
    ),
    on_cap: str = typer.Option(
        None, "--on-cap", help="Above the cap: refuse (400, the default) or clamp to it."
    ),
    temperature: str = typer.Option(
        None, "--temperature", help="Default temperature, 0 to 1; 'unset' clears."
    ),
    guardrail: str = typer.Option(
        None, "--guardrail", help="Default guardrail, ID:VERSION (e.g. abc123:1); 'unset' clears."
    ),
) -> None:
    """Model parameters the proxy fills in when a request leaves them out, and a max_tokens
    cap; they hold for every wire API and key of the customer."""
    result = svc.update_model_parameters(
        ctx.obj, customer_id, max_tokens=max_tokens, max_tokens_cap=max_tokens_cap,
        on_cap=on_cap, temperature=temperature, guardrail=guardrail,
    )  # fmt: skip
    emit(ctx.obj, result, columns=DETAIL_COLUMNS)
    announce_write(ctx.obj)
