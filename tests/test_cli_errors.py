"""Every command fails with one `Error:` line and its exit code when AWS is unreachable,
credentials are missing, or AWS throttles: never a traceback."""

from __future__ import annotations

import socket

import pytest
from botocore.awsrequest import AWSResponse

from bedrock_billing.stores import aws
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
]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_error_line(result, code, fragment):
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr
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

    def throttle(request, **_):
        calls.append(request.url)
        body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow"}'
        raw = type("Raw", (), {"stream": lambda self, **k: iter([body])})()
        return AWSResponse(request.url, 400, {"x-amzn-ErrorType": "ThrottlingException"}, raw)

    monkeypatch.setattr(
        aws, "SESSION_HOOKS", [lambda s: s.events.register("before-send.dynamodb", throttle)]
    )
    result = run(*args, expect=None)
    assert_one_error_line(result, 3, "throttled")
    assert calls


def test_missing_region_is_an_aws_configuration_error(aws_credentials, monkeypatch):
    monkeypatch.delenv("AWS_REGION")
    result = run("list", expect=None)
    assert_one_error_line(result, 3, "no AWS region")


def test_unknown_profile(monkeypatch):
    result = run("list", "--profile", "nope", expect=None)
    assert_one_error_line(result, 3, "profile not found")


def test_bad_global_option_value_is_a_usage_error():
    result = run("list", "--output", "yaml", expect=None)
    assert result.exit_code == 2 and result.stderr.startswith("Error: invalid output")
