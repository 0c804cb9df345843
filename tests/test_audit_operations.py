"""Audit records for the operator's other state changes, through the CLI over moto: alert
thresholds, webhooks (never their signing secret), model parameters, deploy and destroy;
the chain still verifies with them."""

from __future__ import annotations

import json

import boto3
import pytest

from bedrock_billing.core import alerts
from bedrock_billing.core.audit import scrub
from tests.cli_helpers import run, run_json
from tests.deploy_fixtures import make_tree, moto_cfn_outputs  # noqa: F401

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def audit_records(*args) -> list[dict]:
    return run_json("audit", *args)["records"]


@pytest.mark.usefixtures("moto_aws")
def test_alerts_webhooks_and_model_parameters_append_records_without_the_secret():
    kms = boto3.client("kms", region_name="us-east-1")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alerts.webhook_key_alias("bedrock-billing-prod"), TargetKeyId=key)
    cid = run_json("create", "--name", "Acme", "--email", "ops@acme.example")["customer_id"]
    run_json("alerts", "set", "--customer-id", cid, "--threshold", "90")
    run_json("alerts", "clear", "--customer-id", cid)
    hook = run_json("webhooks", "set", "--customer-id", cid, "--url", "https://h.example.com/x")
    run_json("update-model-parameters", "--customer-id", cid, "--max-tokens-cap", "100")
    records = audit_records("--customer-id", cid)
    by_action = {r["action"]: r for r in records}
    assert by_action["alerts.set"]["after"]["thresholds"] == [90]
    assert by_action["alerts.set"]["before"]["source"] == "default"
    assert by_action["alerts.clear"]["after"]["source"] == "default"
    webhook = by_action["webhook.set"]
    assert webhook["after"] == {"url": "https://h.example.com/x", "signing_secret_renewed": True}
    assert by_action["model_parameters.update"]["after"]["max_tokens_cap"] == 100
    assert hook["signing_secret"] not in json.dumps(records)
    assert hook["signing_secret"] not in json.dumps(audit_records("-o", "json"))
    assert run_json("audit", "verify")["ok"] is True


def test_scrub_drops_secrets_by_any_name_and_keeps_display_prefixes():
    value = {"signing_secret": "whsec_x", "secret_ciphertext": b"x", "admin_password": "p",
             "token": "bbk_x", "token_prefix": "bbk_ab", "nested": [{"secret": "s"}]}  # fmt: skip
    assert scrub(value) == {"token_prefix": "bbk_ab", "nested": [{}]}


@pytest.fixture
def deployable(moto_aws, moto_cfn_outputs, tmp_path, monkeypatch):  # noqa: F811
    root = make_tree(tmp_path / "pkg")
    monkeypatch.setattr("bedrock_billing.deploy.package.package_root", lambda: root)
    monkeypatch.setattr("bedrock_billing.deploy.stack.time.sleep", lambda s: None)


def test_deploy_and_destroy_append_records_to_the_stages_trail(deployable):
    run("deploy", "--model", MODEL, "--yes")
    run("deploy", "--model", MODEL, "--yes")  # unchanged: no state change, no record
    [deployed] = audit_records("--action", "deploy")
    assert deployed["after"]["outcome"] == "created"
    assert deployed["after"]["stack_name"] == "bedrock-billing-prod"
    assert deployed["after"]["changes"] and deployed["who"].startswith("arn:aws:")
    assert "deploy --model" in deployed["command"]
    run_json("destroy", "--yes")  # the tables are kept, so is the trail
    [destroyed] = audit_records("--action", "destroy")
    assert "bedrock-billing-prod-invoices" in destroyed["after"]["kept"]
    assert run_json("audit", "verify")["ok"] is True
