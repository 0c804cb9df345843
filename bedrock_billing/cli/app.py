"""The Typer application: global options read once, and the one error path.

Global options (``--profile --region --endpoint-url --output --stage --table-prefix
--debug``) are accepted before the command and after it (``-ojson`` too): the group moves
them to the front before parsing, so every command shares one callback that resolves them
into ``ctx.obj``. Each command's ``--help`` lists them and the command's examples.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from ..core.errors import EXIT_AWS, EXIT_USAGE, BillingError
from ..settings import resolve_settings
from .render import error_line, note

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
GLOBAL_FLAGS = ("--debug",)
GLOBAL_HELP = (
    "Global options, before or after the command: --profile NAME, --region NAME, "
    "--endpoint-url URL, --output/-o table|json|csv, --stage NAME, --table-prefix NAME, "
    "--debug (tracebacks and AWS calls on stderr). See `bedrock-billing --help`."
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
        if name in GLOBAL_FLAGS or (arg.startswith("-o") and len(arg) > 2):  # -ojson
            front.append(arg)
            i += 1
            continue
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

    def get_command(self, ctx, cmd_name: str):
        command = super().get_command(ctx, cmd_name)
        if command is not None and not getattr(command, "_billing_help", False):
            describe_command(command, cmd_name, ctx)
        return command

    def get_params(self, ctx):
        params = super().get_params(ctx)
        _plain_flags(params)
        return params

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _PASSTHROUGH:
            raise
        except BillingError as exc:
            if _raise_errors(ctx):
                raise
            error_line(exc.message)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            error_line("interrupted")
            ctx.exit(130)
        except Exception as exc:  # botocore and the unexpected: one line, never a traceback
            if _raise_errors(ctx):
                raise
            from ..awsclient import aws_error

            settings = ctx.obj
            hint = None
            if settings is not None:
                from ..core.schema import missing_table_hint

                hint = missing_table_hint(settings.tables)
            translated = aws_error(exc, resource_hint=hint)
            if translated is not None:
                error_line(translated.message)
                ctx.exit(EXIT_AWS)
            usage_error = _bad_value(exc)
            if usage_error:
                error_line(usage_error)
                ctx.exit(EXIT_USAGE)
            error_line(f"unexpected {type(exc).__name__}; pass --debug for details")
            ctx.exit(1)


def _raise_errors(ctx) -> bool:
    """``--debug`` or BEDROCK_BILLING_RAISE_ERRORS: let the traceback through."""
    return bool(os.environ.get("BEDROCK_BILLING_RAISE_ERRORS") or getattr(ctx.obj, "debug", False))


def _plain_flags(params) -> None:
    """A plain flag shows no type in --help (Typer would print ``<bool>``)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


def describe_command(command, name: str, ctx) -> None:
    """Give a command's --help its examples and the global options."""
    from .examples import EXAMPLES

    help_option = command.get_help_option(ctx) if ctx is not None else None
    _plain_flags([*command.params, *([help_option] if help_option else [])])
    for sub_name in getattr(command, "commands", {}):
        describe_command(command.commands[sub_name], f"{name} {sub_name}", ctx)
    if not hasattr(command, "commands"):
        lines = [f"  bedrock-billing {line}" for line in EXAMPLES.get(name, ())]
        examples = "\n".join(["Examples:", *lines]) if lines else ""
        command.epilog = "\n\n".join(p for p in (examples, GLOBAL_HELP) if p)
    command._billing_help = True


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
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _debug_logging() -> None:
    """botocore's log on whatever ``sys.stderr`` is when a record is written (a handler bound
    to the stderr of the moment would outlive it when the CLI is run in process)."""
    import logging
    import sys

    class _Stderr(logging.StreamHandler):
        @property
        def stream(self):
            return sys.stderr

        @stream.setter
        def stream(self, _value):
            pass

    root = logging.getLogger()
    if not any(isinstance(h, _Stderr.__mro__[1]) and type(h).__name__ == "_Stderr"
               for h in root.handlers):  # fmt: skip
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"bedrock-billing {version('bedrock-billing')}")
        raise typer.Exit()


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
    debug: bool = typer.Option(
        False, "--debug", help="Tracebacks and the AWS calls (botocore's log) on stderr."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Global options, accepted before or after the command."""
    if debug:
        _debug_logging()
    try:
        ctx.obj = resolve_settings(
            profile=profile,
            region=region,
            endpoint_url=endpoint_url,
            output=output,
            stage=stage,
            table_prefix=table_prefix,
        )
        ctx.obj.debug = debug
    except BillingError as exc:
        error_line(exc.message)
        ctx.exit(EXIT_USAGE)


def announce_write(settings) -> None:
    """Say on stderr where a write went: the stage, region and account."""
    from ..services.installation import write_target

    target = write_target(settings)
    note(
        f"Wrote to stage {target['stage']}, region {target['region']}, "
        f"account {target['account'] or 'unknown'}"
    )
