"""Shared fixtures: an isolated environment for every test, moto in process and as a server."""

from __future__ import annotations

import os

import pytest

# Never let a test reach a real AWS account or read the developer's configuration.
_ISOLATE_PREFIXES = ("AWS_", "BEDROCK_BILLING_")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(_ISOLATE_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    from bedrock_billing import awsclient as aws

    monkeypatch.setattr(aws, "SESSION_HOOKS", [])
    yield


@pytest.fixture
def aws_credentials(monkeypatch):
    """The one set of fake credentials and region every moto test uses."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def moto_aws(aws_credentials):
    """moto in process: every boto3 client in the test talks to it."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def moto_session(moto_aws):
    """moto in process, and a boto3 session in us-east-1 for library-level tests."""
    import boto3

    return boto3.Session(region_name="us-east-1")


@pytest.fixture(scope="session")
def moto_server():
    """moto's server on loopback (requests applied atomically, as DynamoDB applies a
    conditional write: see sandbox/motoserver.py), shared by the session; yields its URL."""
    from bedrock_billing.sandbox.motoserver import MotoServer

    server = MotoServer("127.0.0.1", 0).start()
    yield server.url
    server.stop()


@pytest.fixture
def settings_for(moto_aws):
    """Settings for in-process moto, for library-level tests."""
    from bedrock_billing.settings import resolve_settings

    def make(stage: str = "test", **kwargs):
        return resolve_settings(stage=stage, **kwargs)

    return make
