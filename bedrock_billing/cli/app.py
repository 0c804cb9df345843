"""The Typer application: global options read once, and the one error path.

Global options (``--profile --region --endpoint-url --output --stage --table-prefix``) are
accepted before the command and after it: the group moves them to the front before
parsing, so every command shares one callback that resolves them into ``ctx.obj``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from ..config import resolve_settings
from ..core.errors import EXIT_AWS, EXIT_USAGE, BillingError
from .render import error_line

# Typer may vendor its own click: take the exception types from Typer, not from `click`.
_CLICK_EXCEPTION = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_PASSTHROUGH = (typer.Exit, typer.Abort, _CLICK_EXCEPTION)

GLOBAL_OPTIONS = (
    "--profile",
    "--region",
    "--endpoint-url",
    "--output",
    "-o",
    "--stage",
    "--table-prefix",
)


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options found after the command name to the front."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            if "=" in arg or i + 1 >= len(args):
                front.append(arg)
                i += 1
            else:
                front.extend(args[i : i + 2])
                i += 2
            continue
        rest.append(arg)
        i += 1
    return front + rest


class BillingGroup(TyperGroup):
    """Typer group that hoists global options and renders every failure as one line."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Click's own usage errors (an unknown option, a bad integer) as one `Error:` line
        and exit 2, like every other error, instead of Typer's multi-line panel."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except _CLICK_EXCEPTION as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `bedrock-billing` alone: help
                exc.show()
                sys.exit(exc.exit_code)
            command = getattr(getattr(exc, "ctx", None), "command_path", None)
            hint = f" (see `{command} --help`)" if command else ""
            error_line(exc.format_message() + hint)
            sys.exit(exc.exit_code)
        except typer.Abort:
            error_line("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        from ..services.audit import set_command_line  # the audit trail's command line

        set_command_line(["bedrock-billing", *args])
        return super().parse_args(ctx, hoist_global_options(list(args)))

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _PASSTHROUGH:
            raise
        except BillingError as exc:
            if os.environ.get("BEDROCK_BILLING_RAISE_ERRORS"):
                raise
            error_line(exc.message)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            error_line("interrupted")
            ctx.exit(130)
        except Exception as exc:  # botocore and the unexpected: one line, never a traceback
            if os.environ.get("BEDROCK_BILLING_RAISE_ERRORS"):
                raise
            from ..stores.aws import aws_error

            settings = ctx.obj
            hint = None
            if settings is not None:
                from ..stores.dynamo import missing_table_hint

                hint = missing_table_hint(settings.tables)
            translated = aws_error(exc, resource_hint=hint)
            if translated is not None:
                error_line(translated.message)
                ctx.exit(EXIT_AWS)
            usage_error = _bad_value(exc)
            if usage_error:
                error_line(usage_error)
                ctx.exit(EXIT_USAGE)
            error_line(
                f"unexpected {type(exc).__name__}; set BEDROCK_BILLING_RAISE_ERRORS=1 for details"
            )
            ctx.exit(1)


def _bad_value(exc: Exception) -> str | None:
    """An operator's value that passed parsing but cannot be used: a date or duration past
    what datetime holds (9999-12, 99999999999d), a --out or input path that is missing, not
    a folder or not writable. Caught here once rather than at each option that takes one."""
    if isinstance(exc, OverflowError):
        return "a date or duration is out of range"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or type(exc).__name__}"
    return None


app = typer.Typer(
    cls=BillingGroup,
    name="bedrock-billing",
    help="Sell AWS Bedrock access: customers and tokens, limits, exact usage, invoices, deploy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main_callback(
    ctx: typer.Context,
    profile: str = typer.Option(None, "--profile", help="AWS profile (else AWS_PROFILE)."),
    region: str = typer.Option(None, "--region", help="AWS region (else AWS_REGION)."),
    endpoint_url: str = typer.Option(
        None, "--endpoint-url", help="AWS endpoint, e.g. a local sandbox (else AWS_ENDPOINT_URL)."
    ),
    output: str = typer.Option(
        None, "--output", "-o", help="table (default), json or csv.", show_default=False
    ),
    stage: str = typer.Option(
        None, "--stage", help="Installation stage; names its tables (default prod)."
    ),
    table_prefix: str = typer.Option(
        None, "--table-prefix", help="Table name prefix (default bedrock-billing)."
    ),
) -> None:
    """Global options, accepted before or after the command."""
    try:
        ctx.obj = resolve_settings(
            profile=profile,
            region=region,
            endpoint_url=endpoint_url,
            output=output,
            stage=stage,
            table_prefix=table_prefix,
        )
    except BillingError as exc:
        error_line(exc.message)
        ctx.exit(EXIT_USAGE)
