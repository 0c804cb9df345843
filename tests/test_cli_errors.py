"""Every command fails with one `Error:` line and its exit code when AWS is unreachable,
credentials are missing, or AWS throttles: never a traceback."""

from __future__ import annotations

import socket

import pytest
from botocore.awsrequest import AWSResponse

from bedrock_billing import awsclient as aws
from tests.cli_helpers import run

CID = "00000000-0000-4000-8000-000000000000"
COMMANDS = [
    ["init"],
    ["create", "--name", "A", "--email", "a@a.example"],
    ["list"],
    ["show", CID],
    ["update", "--customer-id", CID, "--name", "B"],
    ["suspend", "--customer-id", CID],
    ["reactivate", "--customer-id", CID],
    ["update-token", "--customer-id", CID],
    ["revoke-token", "--customer-id", CID],
    ["update-limits", "--customer-id", CID, "--daily-limit", "5"],
    ["usage", "--customer-id", CID, "--period", "2026-10"],
    ["usage", "--all", "--period", "2026-10"],
    ["usage", "--customer-id", CID, "--period", "2026-10", "--source", "athena"],
    ["reconcile", "--period", "2026-10", "--customer-id", CID],
    ["invoice", "--customer-id", CID, "--period", "2026-10"],
    ["invoice", "--all", "--period", "2026-10", "--finalize"],
    ["void-invoice", "--customer-id", CID, "--period", "2026-10", "--reason", "wrong plan"],
    ["reconcile", "--repair", "--day", "2026-10-03", "--customer-id", CID, "--yes"],
    ["credits", "add", "--customer-id", CID, "--amount", "10.00"],
    ["credits", "list", "--customer-id", CID],
    ["status"],
    ["destroy", "--yes"],
    ["deploy", "--model", "anthropic.claude-3-haiku-20240307-v1:0", "--yes"],
]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_error_line(result, code, fragment):
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert fragment.lower() in result.stderr.lower()
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_unreachable_endpoint(args, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    url = f"http://127.0.0.1:{closed_port()}"
    result = run(*args, "--endpoint-url", url, expect=None)
    assert_one_error_line(result, 3, "cannot reach the AWS endpoint")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_missing_credentials(args, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    result = run(*args, expect=None)
    assert_one_error_line(result, 3, "no AWS credentials found")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_throttling(args, monkeypatch, aws_credentials):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    calls = []

    def throttle(request, event_name="", **_):
        calls.append(request.url)
        service = event_name.split(".")[1] if "." in event_name else ""
        if service in ("sts", "cloudformation", "s3"):  # XML protocols
            body = (
                b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                b"<Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>"
            )
        else:
            body = b'{"__type":"ThrottlingException","message":"slow"}'
        raw = type("Raw", (), {"stream": lambda self, **k: iter([body])})()
        return AWSResponse(request.url, 400, {"x-amzn-ErrorType": "ThrottlingException"}, raw)

    monkeypatch.setattr(
        aws, "SESSION_HOOKS", [lambda s: s.events.register("before-send", throttle)]
    )
    result = run(*args, expect=None)
    assert_one_error_line(result, 3, "throttl")
    assert calls


def test_missing_region_is_an_aws_configuration_error(aws_credentials, monkeypatch):
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    result = run("list", expect=None)
    assert_one_error_line(result, 3, "no AWS region")


def test_unknown_profile(monkeypatch):
    result = run("list", "--profile", "nope", expect=None)
    assert_one_error_line(result, 3, "profile not found")


def test_bad_global_option_value_is_a_usage_error():
    result = run("list", "--output", "yaml", expect=None)
    assert result.exit_code == 2 and result.stderr.startswith("Error: invalid output")


# The log-reading commands (athena source, reconcile) look for the log bucket first and
# name it when it is missing; these read the tables first.
NEEDS_TABLES = [
    a
    for a in COMMANDS
    if a[0] not in ("init", "create", "status", "destroy", "deploy", "reconcile")
    and "athena" not in a
] + [["usage", "--all", "--period", "2026-10", "--source", "athena"]]


@pytest.mark.parametrize("args", NEEDS_TABLES, ids=lambda a: " ".join(a[:2]))
def test_missing_tables_name_the_table_and_init(args, moto_aws):
    # moto with no tables at all: an operator who forgot `init` (or gave the wrong --stage)
    result = run(*args, expect=None)
    assert_one_error_line(result, 3, "bedrock-billing init")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["nosuch"], "No such command"),
        (["create", "--bogus"], "No such option: --bogus"),
        (["create"], "Missing option '--name'"),
        (["list", "--limit", "abc"], "Invalid value for '--max-items' / '--limit'"),
        (["quote", "--model", "m", "--requests", "-1"], "Invalid value for '--requests'"),
    ],
)
def test_click_usage_errors_are_one_line_too(args, fragment):
    result = run(*args, expect=None)
    assert_one_error_line(result, 2, fragment)
    assert "--help" in result.stderr


HOSTILE = [
    (["usage", "--all", "--period", "9999-12"], "out of range"),
    (["usage", "--all", "--start-date", "9999-12-31", "--end-date", "9999-12-31"], "out of range"),
    (["reconcile", "--period", "9999-12"], "out of range"),
    (["reconcile", "--repair", "--day", "9999-12-31", "--yes"], "out of range"),
    (["create", "--name", "A", "--email", "a@a.example", "--expires-in", "9999999999d"], "range"),
    (["list", "--expiring-within", "99999999999d"], "out of range"),
    (["invoice", "--all", "--period", "2026-10", "--finalize", "--settle", "9999999999w"], "range"),
    (
        ["invoice", "--all", "--period", "2026-10", "--format", "html", "--out", "/proc/x"],
        "/proc/x",
    ),
    (["prices", "export", "--out", "/proc/no/dir/prices.json"], "/proc/no/dir/prices.json"),
]


@pytest.mark.parametrize("args, fragment", HOSTILE)
def test_hostile_dates_durations_and_paths_are_one_line_usage_errors(args, fragment, moto_aws):
    # They ended in "unexpected OverflowError" / "unexpected FileNotFoundError" with exit 1,
    # which tells neither the operator nor cron what was wrong.
    import boto3

    from bedrock_billing.core.schema import log_bucket_name
    from bedrock_billing.stores.logsink import write_sandbox_marker

    run("init", expect=0)
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = log_bucket_name("prod", "bedrock-billing", "123456789012", "us-east-1")
    s3.create_bucket(Bucket=bucket)
    write_sandbox_marker(s3, bucket, log_prefix="logs/")
    result = run(*args, expect=None)
    assert_one_error_line(result, 2, fragment)
