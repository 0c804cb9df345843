"""The CLI reference (docs/cli.md), generated from the commands themselves so it cannot
drift: `python -m bedrock_billing.cli.reference > docs/cli.md` rewrites it, and a test
fails when the file and the commands disagree."""

from __future__ import annotations

import typer.main

from . import app

HEADER = """# CLI reference

Generated from the commands by `python -m bedrock_billing.cli.reference > docs/cli.md`;
a test checks it is current. Global options (`--profile`, `--region`, `--endpoint-url`,
`--output`/`-o`, `--stage`, `--table-prefix`, `--debug`) are accepted before or after any
command (`bedrock-billing --version` prints the version); see the
README for their variables, the config file, output shapes and exit codes.
"""


def _option_row(param) -> str:
    names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    help_text = (getattr(param, "help", None) or "").replace("|", "\\|").replace("\n", " ")
    extras = []
    if getattr(param, "required", False):
        extras.append("required")
    default = getattr(param, "default", None)
    if default not in (None, False, (), []) and not callable(default) and not param.required:
        extras.append(f"default `{default}`")
    if getattr(param, "multiple", False):
        extras.append("repeatable")
    suffix = f" ({', '.join(extras)})" if extras else ""
    return f"| {names} | {help_text}{suffix} |"


def _commands(group, prefix: str = ""):
    for name in group.list_commands(None):
        command = group.get_command(None, name)
        full = f"{prefix}{name}"
        if hasattr(command, "list_commands"):
            yield from _commands(command, full + " ")
        else:
            yield full, command


def render() -> str:
    root = typer.main.get_command(app)
    out = [HEADER]
    for name, command in sorted(_commands(root)):
        out.append(f"## `bedrock-billing {name}`\n")
        out.append((command.help or "").strip().replace("\n", " ") + "\n")
        args = [p for p in command.params if p.param_type_name == "argument"]
        if args:
            out.append("Arguments: " + ", ".join(f"`{a.name.upper()}`" for a in args) + "\n")
        options = [p for p in command.params if p.param_type_name == "option"]
        options = [p for p in options if "--help" not in p.opts]
        if options:
            out.append("| option | meaning |\n| --- | --- |")
            out.extend(_option_row(p) for p in options)
            out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
