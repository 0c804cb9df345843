"""docs/cli.md is generated from the commands; it must be current and cover every one."""

from pathlib import Path

import typer.main

from bedrock_billing.cli import app
from bedrock_billing.cli.reference import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_reference_is_current():
    assert DOC.read_text() == render(), (
        "docs/cli.md is stale: python -m bedrock_billing.cli.reference > docs/cli.md"
    )


def test_every_command_is_documented_with_help():
    root = typer.main.get_command(app)
    text = DOC.read_text()
    for name in root.list_commands(None):
        command = root.get_command(None, name)
        assert f"## `bedrock-billing {name}" in text, name
        assert (command.help or "").strip(), f"{name} has no help text"
