"""The notifier's resources in the template, and the notifier's place in the Lambda zip."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bedrock_billing.core.alerts import STREAM_FILTER
from bedrock_billing.deploy.template import build_template, template_compact
from tests.deploy_fixtures import config


@pytest.fixture(scope="module")
def template() -> dict:
    return build_template(config())


def test_the_usage_table_streams_old_and_new_images(template):
    usage = template["Resources"]["UsageTable"]["Properties"]
    assert usage["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    for name in ("CustomersTable", "TokensTable", "InvoicesTable"):
        assert "StreamSpecification" not in template["Resources"][name]["Properties"]


def test_the_mapping_sends_only_meter_changes_and_failures_to_the_dead_letter_queue(template):
    mapping = template["Resources"]["NotifierEventSourceMapping"]["Properties"]
    [pattern] = mapping["FilterCriteria"]["Filters"]
    assert json.loads(pattern["Pattern"]) == STREAM_FILTER
    assert json.loads(pattern["Pattern"]) == {
        "eventName": ["INSERT", "MODIFY"],  # TTL deletions are REMOVE: dropped
        "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "METER#"}]}}},
    }
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["UsageTable", "StreamArn"]}
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["NotifierDeadLetterQueue", "Arn"]
    }
    assert mapping["BisectBatchOnFunctionError"] is True
    assert 0 < mapping["MaximumRetryAttempts"] <= 10


def test_the_notifier_role_holds_exactly_what_the_notifier_calls(template):
    role = template["Resources"]["NotifierRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    granted = {}
    for statement in role["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in statement["Action"])
        for resource in statement["Resource"]:
            assert resource != "*"
            granted.setdefault(json.dumps(resource), set()).update(statement["Action"])
    assert granted[json.dumps({"Fn::GetAtt": ["UsageTable", "Arn"]})] == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
    }
    assert granted[json.dumps({"Fn::GetAtt": ["CustomersTable", "Arn"]})] == {
        "dynamodb:GetItem",
        "dynamodb:Scan",
    }
    assert granted[json.dumps({"Fn::GetAtt": ["TokensTable", "Arn"]})] == {"dynamodb:Scan"}
    assert granted[json.dumps({"Ref": "AlertsTopic"})] == {"sns:Publish"}
    assert granted[json.dumps({"Fn::GetAtt": ["WebhookKey", "Arn"]})] == {"kms:Decrypt"}
    # The proxy's role did not grow: the notifier reads the stream, not the proxy.
    proxy = template["Resources"]["ProxyRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    text = json.dumps(proxy)
    assert "sns:" not in text and "kms:" not in text and "StreamArn" not in text


def test_the_key_policy_lists_its_actions_and_the_key_outlives_the_stack(template):
    key = template["Resources"]["WebhookKey"]
    assert key["DeletionPolicy"] == "Retain" and key["Properties"]["EnableKeyRotation"]
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        assert not any("*" in action for action in statement["Action"])
    assert "kms:Decrypt" in key["Properties"]["KeyPolicy"]["Statement"][0]["Action"]


def test_outputs_reach_the_cli_configuration(template):
    from bedrock_billing.deploy.template import OUTPUT_CONFIG_KEYS

    assert OUTPUT_CONFIG_KEYS["AlertsTopicArn"] == "alerts_topic_arn"
    assert OUTPUT_CONFIG_KEYS["WebhookKeyAlias"] == "webhook_key"
    assert {"AlertsTopicArn", "WebhookKeyAlias"} <= set(template["Outputs"])


def test_the_template_still_fits_the_api_body_limit():
    assert len(template_compact(config()).encode()) < 51_200


def test_the_notifier_imports_only_the_core_and_boto3():
    probe = (
        "import sys, json\n"
        "import bedrock_billing.notifier.handler\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('typer', 'rich', 'pyathena', 'duckdb', 'moto') or m.startswith("
        "('bedrock_billing.cli', 'bedrock_billing.stores', 'bedrock_billing.services', "
        "'bedrock_billing.proxy', 'bedrock_billing.sandbox', 'bedrock_billing.deploy')))\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_the_proxy_zip_carries_the_notifier():
    from bedrock_billing.deploy.package import zip_members

    names = zip_members()
    assert "bedrock_billing/notifier/handler.py" in names
    assert not any(
        n.startswith(("bedrock_billing/cli/", "bedrock_billing/services/")) for n in names
    )


def test_the_dashboard_shows_the_proxys_metrics(template):
    from bedrock_billing.core.metrics import REQUEST_METRICS

    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body.replace("${AWS::Region}", "us-east-1"))["widgets"]
    titles = " | ".join(w["properties"]["title"] for w in widgets)
    for part in ("Requests, errors", "Latency", "Throttles", "Top customers", "Usage writes"):
        assert part in titles
    emitted = {name for name, _ in REQUEST_METRICS} | {"UsageWriteFailures"}
    for widget in widgets:
        for metric in widget["properties"]["metrics"]:
            if isinstance(metric[0], str):
                assert metric[0] == "BedrockBilling" and metric[1] in emitted, metric
    latency = next(w for w in widgets if w["properties"]["title"].startswith("Latency"))
    assert [m[2]["stat"] for m in latency["properties"]["metrics"]] == ["p50", "p99"]


def test_alarms_on_error_rate_and_p99_latency(template):
    rate = template["Resources"]["ErrorRateAlarm"]["Properties"]
    [expression] = [m for m in rate["Metrics"] if "Expression" in m]
    assert "errors / (errors + ok)" in expression["Expression"] and expression["ReturnData"]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m}
    assert names == {"Errors", "Requests"}
    latency = template["Resources"]["LatencyP99Alarm"]["Properties"]
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("Latency", "p99")
    assert latency["AlarmActions"] == rate["AlarmActions"]  # the stack's alarm topic


def test_a_daily_schedule_invokes_the_notifier(template):
    rule = template["Resources"]["NotifierDailyRule"]["Properties"]
    assert rule["ScheduleExpression"].startswith("cron(")
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["NotifierFunction", "Arn"]}
    permission = template["Resources"]["NotifierDailyPermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["NotifierDailyRule", "Arn"]}


PRINCIPAL = "arn:aws:quicksight:us-east-1:123456789012:user/default/ops"


def test_quicksight_is_off_by_default_and_reads_the_stacks_athena_table(template):
    assert not [r for r in template["Resources"].values() if "QuickSight" in r["Type"]]
    tpl = build_template(config(quicksight=True, quicksight_principal=PRINCIPAL))
    source = tpl["Resources"]["QuickSightDataSource"]["Properties"]
    assert source["Type"] == "ATHENA"
    assert source["DataSourceParameters"]["AthenaParameters"]["WorkGroup"] == (
        "bedrock-billing-prod"
    )
    table = tpl["Resources"]["QuickSightDataSet"]["Properties"]["PhysicalTableMap"]["usagelog"]
    relational = table["RelationalTable"]
    assert (relational["Schema"], relational["Name"]) == ("bedrock_billing_prod", "usage_log")
    from bedrock_billing.core.logschema import FIELD_NAMES

    assert [c["Name"] for c in relational["InputColumns"]] == [*FIELD_NAMES, "dt"]
    for resource in ("QuickSightDataSource", "QuickSightDataSet"):
        [permission] = tpl["Resources"][resource]["Properties"]["Permissions"]
        assert permission["Principal"] == PRINCIPAL
        assert not any("*" in a for a in permission["Actions"])


def test_quicksight_template_is_cfn_lint_clean():
    from cfnlint.api import ManualArgs, lint

    body = json.dumps(
        build_template(
            config(quicksight=True, quicksight_principal=PRINCIPAL, customer_metrics=True)
        )
    )
    matches = lint(body, config=ManualArgs(regions=["us-east-1"]))
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert errors == [], [f"{m.rule.id} {m.message}" for m in errors]


def test_quicksight_needs_an_owner_and_customer_metrics_reach_the_proxy():
    from bedrock_billing.core.errors import InvalidInput
    from bedrock_billing.deploy.config import validate

    with pytest.raises(InvalidInput, match="--quicksight-principal"):
        validate(config(quicksight=True))
    validate(config(quicksight=True, quicksight_principal=PRINCIPAL))
    env = build_template(config(customer_metrics=True))["Resources"]["ProxyFunction"]
    assert env["Properties"]["Environment"]["Variables"]["BEDROCK_BILLING_CUSTOMER_METRICS"] == "on"
    plain = build_template(config())["Resources"]["ProxyFunction"]["Properties"]
    assert "BEDROCK_BILLING_CUSTOMER_METRICS" not in plain["Environment"]["Variables"]
