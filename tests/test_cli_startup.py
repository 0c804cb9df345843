"""Start-up stays light: `--help` must not import boto3 (or the sandbox's heavy parts)."""

import subprocess
import sys


def imported_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(m for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_help_does_not_import_boto3():
    code = (
        "from bedrock_billing.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass"
    )
    modules = imported_after(code)
    assert "bedrock_billing.cli" in modules
    # The console's server and templates load only when `console` runs.
    for heavy in ("boto3", "botocore", "pyathena", "duckdb", "moto", "jinja2",
                  "bedrock_billing.console", "bedrock_billing.console.server"):
        assert heavy not in modules, heavy


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "bedrock_billing", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "update-token" in out.stdout
