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


@pytest.fixture(scope="session")
def tls_sandbox():
    """The whole sandbox, started once per session (per xdist worker): moto's server, the
    fake Bedrock, and the real proxy over HTTP (``proxy_url``) and HTTPS
    (``bedrock_endpoint_url``, trusted through ``ca_bundle``). Tests share it: each makes
    its own customer (``sandbox_customer``) and compares what the fake recorded by request id."""
    from bedrock_billing.sandbox.runner import Sandbox

    with pytest.MonkeyPatch.context() as mp:  # started from a clean environment
        for name in list(os.environ):
            if name.startswith(_ISOLATE_PREFIXES):
                mp.delenv(name, raising=False)
        box = Sandbox(port=0, tls_port=0).start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def sandbox_customer(tls_sandbox):
    """A factory: ``sandbox_customer(**limits)`` makes a new customer of the TLS sandbox
    (limits as ``update_limits`` takes them, e.g. ``daily_request_limit=1``) and returns
    ``{"customer_id": ..., "token": ...}``."""
    from bedrock_billing.services.customers import create_customer, update_limits

    def make(**limits):
        settings = tls_sandbox.settings()
        made = create_customer(settings, name="TLS Test", email="tls@example.com")
        if limits:
            update_limits(settings, made["customer_id"], **limits)
        return {"customer_id": made["customer_id"], "token": made["token"]}

    return make


@pytest.fixture
def bedrock_client(tls_sandbox, monkeypatch):
    """A factory for boto3 ``bedrock-runtime`` clients on the sandbox's HTTPS endpoint, with
    the given token as the Bedrock API key (``AWS_BEARER_TOKEN_BEDROCK``) and the sandbox's
    CA; botocore's default retries unless ``retries=`` says otherwise."""
    import boto3
    from botocore.config import Config

    def make(token: str, **config):
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", token)
        config.setdefault("proxies", {})
        return boto3.client(
            "bedrock-runtime",
            region_name=tls_sandbox.region,
            endpoint_url=tls_sandbox.bedrock_endpoint_url,
            verify=tls_sandbox.ca_bundle,
            config=Config(**config),
        )

    return make


@pytest.fixture(autouse=True)
def _quiet_root_logger():
    """``--debug`` run in process turns the root logger to DEBUG: undo it after each test,
    so later tests' botocore calls do not log into their captured output."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (no browser download). Browser tests use
    `chromium.new_context()` / `.new_page()`; CI installs the browser (.ci/run)."""
    import os

    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
