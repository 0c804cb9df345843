"""Inputs that used to slip through the CLI: Unicode digits, huge amounts, an empty stage,
an unbounded date range, an auth cache longer than a revocation should take."""

from __future__ import annotations

import json
import socket
import tracemalloc
from datetime import date
from pathlib import Path

import pytest

from bedrock_billing.core.timeutil import MAX_RANGE_DAYS, FixedClock
from bedrock_billing.deploy.config import MAX_AUTH_CACHE_SECONDS
from bedrock_billing.proxy.config import ProxyConfig
from bedrock_billing.services.usage_reports import usage_report
from tests.cli_helpers import run, run_json

CID = "00000000-0000-4000-8000-000000000000"
README = Path(__file__).resolve().parents[1] / "README.md"


def one_error_line(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert fragment.lower() in result.stderr.lower(), result.stderr
    assert "unexpected" not in result.stderr


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


# ---- digits that are not ASCII: '²' made int() raise ("unexpected ValueError"); '٣' was
# silently read as 3


@pytest.mark.parametrize("digit", ["²", "٣"])
@pytest.mark.parametrize(
    "args",
    [
        ["create", "--name", "A", "--email", "a@a.example", "--daily-limit", "{}"],
        ["create", "--name", "A", "--email", "a@a.example", "--expires-in", "{}d"],
        ["update-limits", "--customer-id", CID, "--requests-per-minute", "{}"],
        ["update-token", "--customer-id", CID, "--grace-period", "{}"],
        ["list", "--expiring-within", "{}"],
    ],
    ids=["daily-limit", "expires-in", "requests-per-minute", "grace-period", "expiring-within"],
)
def test_non_ascii_digits_are_a_usage_error(args, digit, moto_aws):
    result = run(*[a.replace("{}", digit) for a in args], expect=None)
    one_error_line(result, 2, "invalid")


def test_non_ascii_digits_in_a_quote_usage_file_are_a_usage_error(tmp_path):
    usage = tmp_path / "usage.csv"
    usage.write_text(
        "date,model,requests,input_tokens,output_tokens\n"
        "2026-10-01,anthropic.claude-3-haiku-20240307-v1:0,²,10,10\n",
        encoding="utf-8",
    )
    one_error_line(run("quote", "--usage", str(usage), expect=None), 2, "whole number")


# ---- amounts beyond any arithmetic


@pytest.mark.parametrize("amount", ["1e400", "1E+16", "-1e400"])
def test_a_huge_credit_amount_is_a_usage_error_and_nothing_is_written(amount, moto_aws):
    cid = run_json("create", "--name", "A", "--email", "a@a.example")["customer_id"]
    result = run("credits", "add", "--customer-id", cid, "--amount", amount, expect=None)
    one_error_line(result, 2, "--amount")
    assert run_json("credits", "list", "--customer-id", cid)["grants"] == []


# ---- an empty stage is not the default stage


@pytest.mark.parametrize(
    "args",
    [
        ["--stage", "", "destroy", "--yes"],
        ["destroy", "--yes", "--stage="],
        ["list", "--stage", " "],
        ["--table-prefix", "", "list"],
    ],
)
def test_an_empty_stage_or_prefix_is_refused_before_any_aws_call(args, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_url())  # a call would exit 3
    result = run(*args, expect=None)
    one_error_line(result, 2, "must not be empty")


# ---- a report's range is bounded


@pytest.mark.parametrize(
    "args",
    [
        ["usage", "--all", "--start-date", "0001-01-01"],
        ["usage", "--customer-id", CID, "--start-date", "2020-01-01", "--end-date", "2021-01-01"],
        ["reconcile", "--start-date", "0001-01-01", "--end-date", "2026-10-31"],
    ],
)
def test_a_range_over_the_bound_is_refused_before_any_aws_call(args, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_url())
    result = run(*args, expect=None)
    one_error_line(result, 2, f"at most {MAX_RANGE_DAYS}")


class EmptySource:
    engine = "dynamodb"

    def __init__(self):
        self.ranges = []

    def read_usage(self, first, last, ids, progress):
        self.ranges.append((first, last))
        return {}


def test_a_report_at_the_bound_stays_small_in_memory_and_output():
    first = date(2024, 1, 1)  # a leap year: 366 days
    last = date(2024, 12, 31)
    source = EmptySource()
    tracemalloc.start()
    try:
        report = usage_report(source, [CID], first, last, clock=FixedClock("2026-01-01T00:00:00Z"))
        text = json.dumps(report.to_dict())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (last - first).days + 1 == MAX_RANGE_DAYS
    assert len(report.to_dict()["daily"]) == MAX_RANGE_DAYS
    assert len(text) < 300_000  # bytes of JSON for the largest range allowed
    assert peak < 8_000_000  # bytes of Python memory for it
    with pytest.raises(Exception, match=f"at most {MAX_RANGE_DAYS}"):
        usage_report(source, [CID], first, date(2025, 1, 1))
    assert source.ranges == [(first, last)]  # the longer range never reached the source


# ---- the auth cache: how long a revoked token keeps working


def test_deploy_refuses_an_auth_cache_longer_than_the_maximum(tmp_path):
    out = tmp_path / "t.json"
    model = "anthropic.claude-3-haiku-20240307-v1:0"
    too_long = str(MAX_AUTH_CACHE_SECONDS + 1)
    result = run("deploy", "--model", model, "--auth-cache-seconds", too_long,
                 "--template-out", str(out), expect=None)  # fmt: skip
    one_error_line(result, 2, f"0 to {MAX_AUTH_CACHE_SECONDS} seconds")
    assert not out.exists()
    run("deploy", "--model", model, "--auth-cache-seconds", str(MAX_AUTH_CACHE_SECONDS),
        "--template-out", str(out))  # fmt: skip
    env = json.loads(out.read_text())["Resources"]["ProxyFunction"]["Properties"]["Environment"]
    assert env["Variables"]["BEDROCK_BILLING_AUTH_CACHE_TTL"] == str(MAX_AUTH_CACHE_SECONDS)


def test_readme_says_a_revoked_token_works_until_the_cache_expires():
    (row,) = [line for line in README.read_text().splitlines() if "`revoke-token" in line]
    assert "at once" not in row
    assert f"{int(ProxyConfig.auth_cache_ttl)} s" in row
    assert f"{MAX_AUTH_CACHE_SECONDS} s" in row
