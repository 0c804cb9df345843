"""The command-line interface: Typer commands that parse, call one service, and render."""

from __future__ import annotations

import importlib

from .app import app

# Imported for their @app.command registrations, in the order `--help` lists them.
for _module in ("customers", "usage", "billing", "deploy", "sandbox"):
    try:
        importlib.import_module(f"{__name__}.commands.{_module}")
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"{__name__}.commands.{_module}":
            raise


def main() -> None:
    app()
