"""The command-line interface: Typer commands that parse, call one service, and render."""

from __future__ import annotations

import importlib

from .app import app

# Imported for their @app.command registrations, in the order `--help` lists them.
_COMMANDS = (
    "customers",
    "keys",
    "usage",
    "billing",
    "reports",
    "alerts",
    "webhooks",
    "anomalies",
    "deploy",
    "sandbox",
    "audit",
    "console",
    "configuration",
)
for _module in _COMMANDS:
    importlib.import_module(f"{__name__}.commands.{_module}")


def main() -> None:
    app()
