"""deploy --invocation-logs metadata: the template's part (bucket policy for Bedrock,
lifecycle rule, the Athena table) and the region's logging setting, read before it is
written and never replaced silently (moto has the Get/Put/Delete APIs)."""

from __future__ import annotations

import json
import tomllib

import pytest

from bedrock_billing.core.errors import Conflict
from bedrock_billing.core.invocationlog import INVOCATION_LOG_PREFIX
from bedrock_billing.deploy import invocation_logging
from bedrock_billing.deploy.config import DeployConfig
from bedrock_billing.deploy.template import build_template
from tests.cli_helpers import run, run_json
from tests.deploy_fixtures import make_tree, moto_cfn_outputs  # noqa: F401

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
BUCKET = "bedrock-billing-prod-logs-123456789012-us-east-1"
OPERATORS = {
    "cloudWatchConfig": {
        "logGroupName": "/team/bedrock",
        "roleArn": "arn:aws:iam::123456789012:role/bedrock-logs",
    },
    "textDataDeliveryEnabled": True,
}


@pytest.fixture
def bedrock(moto_session):
    return moto_session.client("bedrock")


def test_enable_sets_metadata_only_logging_to_the_bucket_and_is_idempotent(bedrock):
    first = invocation_logging.enable(bedrock, BUCKET)
    assert first.outcome == "enabled" and first.previous == "no model invocation logging"
    config = bedrock.get_model_invocation_logging_configuration()["loggingConfig"]
    assert config["s3Config"] == {"bucketName": BUCKET, "keyPrefix": "bedrock-invocation-logs"}
    for flag in invocation_logging.DATA_FLAGS:
        assert config[flag] is False, flag
    assert invocation_logging.enable(bedrock, BUCKET).outcome == "unchanged"


def test_an_operators_configuration_is_refused_and_named_unless_forced(bedrock):
    bedrock.put_model_invocation_logging_configuration(loggingConfig=OPERATORS)
    with pytest.raises(Conflict) as refused:
        invocation_logging.enable(bedrock, BUCKET)
    assert "CloudWatch Logs group /team/bedrock" in refused.value.message
    assert "with text data" in refused.value.message and "--force" in refused.value.message
    kept = bedrock.get_model_invocation_logging_configuration()["loggingConfig"]
    assert kept["cloudWatchConfig"]["logGroupName"] == "/team/bedrock"
    forced = invocation_logging.enable(bedrock, BUCKET, force=True)
    assert forced.outcome == "replaced" and "metadata only" in forced.current


def _template(**overrides) -> dict:
    return build_template(DeployConfig(models=(MODEL,), **overrides))


def test_the_template_lets_bedrock_write_its_prefix_only_when_asked():
    off, on = _template(), _template(invocation_logs="metadata")
    assert "GlueInvocationTable" not in off["Resources"]
    statement = on["Resources"]["LogBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][-1]
    assert statement["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert statement["Action"] == "s3:PutObject"
    assert "/bedrock-invocation-logs/AWSLogs/${AWS::AccountId}/BedrockModelInvocationLogs/*" in (
        statement["Resource"]["Fn::Sub"]
    )
    assert set(statement["Condition"]) == {"StringEquals", "ArnLike"}
    rules = on["Resources"]["LogBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if r.get("Prefix") == INVOCATION_LOG_PREFIX]
    assert rule["ExpirationInDays"] == 400
    table = on["Resources"]["GlueInvocationTable"]["Properties"]["TableInput"]
    assert table["Parameters"]["projection.dt.format"] == "yyyy/MM/dd"
    assert table["Parameters"]["storage.location.template"]["Fn::Sub"].endswith("/${!dt}/")


def test_cfn_lint_passes_with_invocation_logs(tmp_path):
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(_template(invocation_logs="metadata")),
                   config=ManualArgs(regions=["us-east-1"]))  # fmt: skip
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert errors == [], [f"{m.rule.id} {m.message}" for m in errors]


@pytest.fixture
def deployed_env(moto_aws, moto_cfn_outputs, tmp_path, monkeypatch):  # noqa: F811
    root = make_tree(tmp_path / "pkg")
    monkeypatch.setattr("bedrock_billing.deploy.package.package_root", lambda: root)
    monkeypatch.setattr("bedrock_billing.deploy.stack.time.sleep", lambda s: None)


def test_deploy_turns_logging_on_and_a_later_deploy_keeps_it(deployed_env, moto_session):
    out = run_json("deploy", "--model", MODEL, "--invocation-logs", "metadata", "--yes")
    assert out["invocation_logging"]["outcome"] == "enabled"
    config = tomllib.loads(open(out["config_file"]).read())["prod"]
    assert config["invocation_logs"] == "metadata"
    bedrock = moto_session.client("bedrock")
    s3 = bedrock.get_model_invocation_logging_configuration()["loggingConfig"]["s3Config"]
    assert s3["bucketName"] == BUCKET
    again = run_json("deploy", "--yes")  # no flag: the last deploy's setting is kept
    assert again["invocation_logging"]["outcome"] == "unchanged"


def test_deploy_refuses_over_an_operators_logging_before_writing_anything(
    deployed_env, moto_session
):
    moto_session.client("bedrock").put_model_invocation_logging_configuration(
        loggingConfig=OPERATORS
    )
    refused = run("deploy", "--model", MODEL, "--invocation-logs", "metadata", "--yes", expect=1)
    assert "already set" in refused.stderr and "/team/bedrock" in refused.stderr
    stacks = moto_session.client("cloudformation").list_stacks()["StackSummaries"]
    assert [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"] == []
    forced = run_json("deploy", "--model", MODEL, "--invocation-logs", "metadata", "--force",
                      "--yes")  # fmt: skip
    assert forced["invocation_logging"]["outcome"] == "replaced"
