"""The command-line interface: Typer commands that parse, call one service, and render."""

from __future__ import annotations

from .app import app
from .commands import customers as _customers  # noqa: F401  (registers the commands)
from .commands import deploy as _deploy  # noqa: F401


def main() -> None:
    app()
