"""Helpers for CLI tests: run a command through CliRunner and parse its JSON."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bedrock_billing.cli import app


def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart already
        return CliRunner()


def run(*args: str, expect: int | None = 0):
    result = runner().invoke(app, list(args), catch_exceptions=False)
    if expect is not None:
        assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr)
    return result


def run_json(*args: str, expect: int = 0):
    result = run(*args, "--output", "json", expect=expect)
    return json.loads(result.stdout)
