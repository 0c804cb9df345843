"""The deploy's front-door options as template data: a WAF web ACL with a per-IP rate rule,
reserved concurrency, API access logs. All off by default; cfn-lint clean when on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bedrock_billing.core.errors import Conflict, InvalidInput
from bedrock_billing.deploy.template import build_template
from tests.cli_helpers import run
from tests.deploy_fixtures import MODELS, config, moto_cfn_outputs  # noqa: F401

DOCS = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"


def of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


@pytest.fixture(scope="module")
def protected() -> dict:
    return build_template(
        config(models=MODELS, waf_rate_limit=600, reserved_concurrency=25, access_logs=True)
    )


def test_everything_is_off_by_default():
    template = build_template(config(models=MODELS))
    assert not of_type(template, "AWS::WAFv2::WebACL")
    assert not of_type(template, "AWS::WAFv2::WebACLAssociation")
    assert (
        "ReservedConcurrentExecutions" not in template["Resources"]["ProxyFunction"]["Properties"]
    )
    assert "AccessLogSetting" not in template["Resources"]["ApiStage"]["Properties"]
    assert "ApiAccessLogGroup" not in template["Resources"]


def test_the_web_acl_blocks_one_ip_over_its_limit_and_lets_the_rest_through(protected):
    (acl,) = of_type(protected, "AWS::WAFv2::WebACL").values()
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and props["DefaultAction"] == {"Allow": {}}
    (rule,) = props["Rules"]
    assert rule["Statement"] == {
        "RateBasedStatement": {"Limit": 600, "EvaluationWindowSec": 300, "AggregateKeyType": "IP"}
    }
    block = rule["Action"]["Block"]["CustomResponse"]
    assert block["ResponseCode"] == 429
    body = props["CustomResponseBodies"][block["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    assert set(json.loads(body["Content"])["error"]) == {"code", "message"}  # proxy's shape


def test_the_web_acl_is_attached_to_the_api_stage(protected):
    (assoc,) = of_type(protected, "AWS::WAFv2::WebACLAssociation").values()
    assert assoc["DependsOn"] == ["ApiStage"]
    stage = protected["Resources"]["ApiStage"]["Properties"]["StageName"]
    arn = assoc["Properties"]["ResourceArn"]["Fn::Sub"]
    assert re.fullmatch(
        r"arn:\$\{AWS::Partition\}:apigateway:\$\{AWS::Region\}::/restapis/\$\{Api\}/stages/"
        + stage,
        arn,
    )
    assert assoc["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}


def test_reserved_concurrency_caps_the_function(protected):
    assert (
        protected["Resources"]["ProxyFunction"]["Properties"]["ReservedConcurrentExecutions"] == 25
    )


def test_access_logs_go_to_their_own_group_and_log_no_path_or_header(protected):
    group = protected["Resources"]["ApiAccessLogGroup"]["Properties"]
    assert group["LogGroupName"].startswith("/aws/apigateway/")
    assert (
        group["RetentionInDays"]
        == protected["Resources"]["ProxyLogGroup"]["Properties"]["RetentionInDays"]
    )
    setting = protected["Resources"]["ApiStage"]["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"]["Fn::Sub"].endswith(":log-group:${ApiAccessLogGroup}")
    fields = json.loads(setting["Format"])
    assert fields["requestId"] == "$context.requestId" and "ip" in fields
    values = " ".join(fields.values())
    assert "$context.path" not in values  # a model id (or a mistaken token) stays out
    assert "header" not in values.lower() and "authorizer" not in values


def test_the_protected_template_is_cfn_lint_clean(protected):
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(protected), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    problems = [m for m in matches if m.rule.id[0] in "EW"]
    assert problems == [], [f"{m.rule.id} {m.message}" for m in problems]


@pytest.mark.parametrize(
    "kwargs",
    [{"waf_rate_limit": 9}, {"waf_rate_limit": 2_000_000_001}, {"reserved_concurrency": 0}],
)
def test_out_of_range_options_are_refused(kwargs):
    with pytest.raises(InvalidInput):
        config(models=MODELS, **kwargs)


def test_the_cli_options_reach_the_template(tmp_path):
    out = tmp_path / "t.json"
    run("deploy", "--model", MODELS[0], "--waf-rate-limit", "1000", "--reserved-concurrency",
        "10", "--access-logs", "--template-out", str(out))  # fmt: skip
    template = json.loads(out.read_text())
    (acl,) = of_type(template, "AWS::WAFv2::WebACL").values()
    assert acl["Properties"]["Rules"][0]["Statement"]["RateBasedStatement"]["Limit"] == 1000
    assert (
        template["Resources"]["ProxyFunction"]["Properties"]["ReservedConcurrentExecutions"] == 10
    )
    assert "AccessLogSetting" in template["Resources"]["ApiStage"]["Properties"]
    bad = run("deploy", "--model", MODELS[0], "--waf-rate-limit", "5", "--template-out",
              str(tmp_path / "x.json"), expect=2)  # fmt: skip
    assert bad.stderr.startswith("Error: the WAF rate limit must be 10")


def test_the_deploy_guide_states_the_waf_cost_and_its_source():
    text = DOCS.read_text()
    assert "--waf-rate-limit" in text and "--reserved-concurrency" in text
    assert "--access-logs" in text
    assert "https://aws.amazon.com/waf/pricing/" in text
    assert "$6.00 per month" in text


def test_a_stack_with_every_protection_deploys_in_moto(monkeypatch, tmp_path, moto_cfn_outputs):  # noqa: F811
    # moto does not model WAFv2 or access logs in CloudFormation; this checks the rest of
    # the stack still comes up with them in the template (the parts are tested as data).
    import boto3
    from moto import mock_aws

    from bedrock_billing.deploy import deployer
    from bedrock_billing.deploy.package import build_zip
    from tests.deploy_fixtures import make_tree

    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    cfg = config(models=MODELS, waf_rate_limit=100, reserved_concurrency=5, access_logs=True)
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        with pytest.raises(Conflict, match="CloudWatch Logs role"):  # the account's setting
            deployer.deploy(cfg, session=session, config_path=tmp_path / "c.toml")
        assert session.client("cloudformation").list_stacks()["StackSummaries"] == []
        session.client("apigateway").update_account(
            patchOperations=[
                {
                    "op": "replace",
                    "path": "/cloudwatchRoleArn",
                    "value": "arn:aws:iam::123456789012:role/apigateway-logs",
                }
            ]
        )
        result = deployer.deploy(
            cfg,
            session=boto3.Session(region_name="us-east-1"),
            artifact=build_zip(make_tree(tmp_path / "tree")),
            sleep=lambda s: None,
            config_path=tmp_path / "config.toml",
        )
    assert result.outcome == "created"
