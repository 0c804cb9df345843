"""deploy, status and destroy through the CLI, against moto in process."""

from __future__ import annotations

import json
import tomllib

import pytest

from tests.cli_helpers import run, run_json
from tests.deploy_fixtures import make_tree, moto_cfn_outputs  # noqa: F401

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """The proxy lands on its own branch: zip a stand-in tree instead of the checkout."""
    root = make_tree(tmp_path / "pkg")
    monkeypatch.setattr("bedrock_billing.deploy.package.package_root", lambda: root)
    monkeypatch.setattr("bedrock_billing.deploy.stack.time.sleep", lambda s: None)
    return root


@pytest.fixture
def deployed_env(moto_aws, moto_cfn_outputs, fake_package):  # noqa: F811
    return None


def test_template_out_writes_the_template_and_calls_no_aws_api(tmp_path, monkeypatch):
    import botocore.client

    def refuse(*args, **kwargs):
        raise AssertionError("an AWS API was called")

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refuse)
    monkeypatch.setattr("boto3.Session", refuse)
    out = tmp_path / "stack.json"
    run("deploy", "--stage", "dev", "--model", MODEL, "--template-out", str(out))
    template = json.loads(out.read_text())
    assert (
        template["Resources"]["TokensTable"]["Properties"]["TableName"]
        == "bedrock-billing-dev-tokens"
    )


def test_deploy_prints_outputs_and_a_second_deploy_is_unchanged(deployed_env, tmp_path):
    first = run_json("deploy", "--model", MODEL, "--yes")
    assert first["outcome"] == "created"
    outputs = {row["key"]: row["value"] for row in first["outputs"]}
    assert outputs["ApiUrl"].endswith("/prod/bedrock")
    config = tomllib.loads(open(first["config_file"]).read())["prod"]
    assert config["athena_workgroup"] == "bedrock-billing-prod"
    again = run_json("deploy", "--model", MODEL, "--yes")
    assert again["outcome"] == "unchanged" and again["changes"] == []
    # a re-run without --model keeps the last deploy's models: nothing changes
    rerun = run("deploy", "--yes", "--output", "json")
    assert json.loads(rerun.stdout)["outcome"] == "unchanged"
    assert f"Models from the last deploy of prod: {MODEL}" in rerun.stderr


def test_deploy_without_yes_outside_a_terminal_refuses_and_applies_nothing(deployed_env):
    result = run("deploy", "--model", MODEL, expect=2)
    assert "--yes" in result.stderr
    status = run_json("status")
    assert status["exists"] is False


def test_dry_run_shows_changes_and_applies_nothing(deployed_env):
    result = run_json("deploy", "--model", MODEL, "--dry-run")
    assert result["outcome"] == "dry-run"
    function = {"action": "Add", "logical_id": "ProxyFunction",
                "resource_type": "AWS::Lambda::Function", "replacement": None}  # fmt: skip
    assert function in result["changes"]
    assert run_json("status")["exists"] is False


def test_deploy_without_a_model_is_a_usage_error(deployed_env):
    result = run("deploy", "--yes", expect=2)
    assert "--model" in result.stderr


def test_status_and_destroy(deployed_env):
    run("deploy", "--model", MODEL, "--yes")
    status = run_json("status")
    assert status["status"] == "CREATE_COMPLETE"
    assert any(row["key"] == "AthenaDatabase" for row in status["outputs"])
    run("destroy", expect=2)  # no terminal, no --yes
    gone = run_json("destroy", "--yes")
    assert gone["outcome"] == "deleted"
    assert "bedrock-billing-prod-usage" in gone["kept"]
    assert run_json("status")["exists"] is False
