"""The command-line interface: Typer commands that parse, call one service, and render."""

from __future__ import annotations

from .app import app
from .commands import customers as _customers  # noqa: F401  (registers the commands)


def main() -> None:
    app()
