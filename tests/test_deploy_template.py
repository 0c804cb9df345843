"""The template as data: lint, least privilege, and the parts moto's CloudFormation skips."""

from __future__ import annotations

import json

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.logschema import (
    EVENT_ERROR,
    EVENT_INVOKE,
    EVENT_REFUSED,
    glue_columns,
)
from bedrock_billing.core.schema import TABLE_KEYS, TTL_ATTRIBUTE, TableNames
from bedrock_billing.deploy.config import DeployConfig
from bedrock_billing.deploy.template import build_template, template_json, write_template
from tests.deploy_fixtures import config

PROFILE = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
GLOBAL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"


@pytest.fixture(scope="module")
def template() -> dict:
    return build_template(
        config(
            models=("anthropic.claude-3-haiku-20240307-v1:0", PROFILE, GLOBAL),
            cors_origins=("https://app.example.com",),
            prices_json='{"anthropic.claude-3-haiku-20240307-v1:0": {"input": "0.25"}}',
        )
    )


def resources_of(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def statements(template: dict) -> list[dict]:
    out = []
    for res in template["Resources"].values():
        props = res.get("Properties", {})
        for policy in props.get("Policies", []):
            out.extend(policy["PolicyDocument"]["Statement"])
        if res["Type"] == "AWS::S3::BucketPolicy":
            out.extend(props["PolicyDocument"]["Statement"])
    return out


def test_cfn_lint_reports_no_errors_on_the_written_template(tmp_path, template):
    from cfnlint.api import ManualArgs, lint

    path = tmp_path / "stack.json"
    write_template(config(models=("anthropic.claude-3-haiku-20240307-v1:0", PROFILE, GLOBAL),
                          cors_origins=("https://app.example.com",)), path)  # fmt: skip
    matches = lint(path.read_text(), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert errors == [], [f"{m.rule.id} {m.message}" for m in errors]


def test_cfn_lint_would_catch_a_wrong_property(template):
    from cfnlint.api import ManualArgs, lint

    broken = json.loads(json.dumps(template))
    broken["Resources"]["ProxyFunction"]["Properties"]["Runtime"] = "python2.7"
    matches = lint(json.dumps(broken), config=ManualArgs(regions=["us-east-1"]))
    assert any(m.rule.id.startswith("E") for m in matches)


def test_allow_statements_name_no_wildcard_action_and_no_bare_wildcard_resource(template):
    allows = [s for s in statements(template) if s["Effect"] == "Allow"]
    assert allows
    for statement in allows:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [
            statement["Action"]
        ]  # fmt: skip
        assert not any("*" in a for a in actions), statement
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        assert "*" not in resources, statement


def test_the_only_wildcard_action_is_the_bucket_deny_of_plain_http(template):
    wild = [s for s in statements(template) if "*" in json.dumps(s.get("Action"))]
    assert [(s["Effect"], s["Action"]) for s in wild] == [("Deny", "s3:*")]
    assert wild[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_role_policies_carry_no_managed_policies(template):
    for role in resources_of(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_proxy_may_invoke_only_the_named_models_and_profile_targets(template):
    proxy = template["Resources"]["ProxyRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    bedrock = [s for s in proxy["Statement"] if s["Action"][0].startswith("bedrock:")]
    text = json.dumps(bedrock)
    assert "foundation-model/anthropic.claude-3-haiku-20240307-v1:0" in text
    assert f"inference-profile/{PROFILE}" in text
    # A us. profile reaches the foundation model in each US region, through the profile only.
    routed = [s for s in bedrock if "Condition" in s and PROFILE in json.dumps(s["Condition"])]
    arns = [r["Fn::Sub"] for r in routed[0]["Resource"]]
    for region in ("us-east-1", "us-east-2", "us-west-2"):
        assert (
            f"arn:${{AWS::Partition}}:bedrock:{region}::foundation-model/"
            "anthropic.claude-3-5-sonnet-20241022-v2:0" in arns
        )
    assert all(s["Action"] == ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
               for s in bedrock)  # fmt: skip
    # The global profile's any-region target is bound to the profile by the condition.
    global_stmt = [s for s in bedrock if "Condition" in s and GLOBAL in json.dumps(s["Condition"])]
    assert global_stmt and "bedrock:*::foundation-model" in json.dumps(global_stmt[0]["Resource"])


def test_proxy_table_access_is_per_table_and_read_only_on_customers_and_tokens(template):
    proxy = template["Resources"]["ProxyRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    by_table = {
        s["Resource"][0]["Fn::GetAtt"][0]: s["Action"]
        for s in proxy["Statement"]
        if s["Action"][0].startswith("dynamodb:")
    }
    assert by_table["CustomersTable"] == ["dynamodb:GetItem"]
    assert by_table["TokensTable"] == ["dynamodb:GetItem"]
    assert "dynamodb:UpdateItem" in by_table["UsageTable"]
    assert not any("Scan" in a or "Delete" in a for acts in by_table.values() for a in acts)


def test_proxy_reads_of_the_customer_portal_are_scoped_to_their_tables(template):
    proxy = template["Resources"]["ProxyRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    statements = [s for s in proxy["Statement"] if s["Action"][0].startswith("dynamodb:")]
    for statement in statements:  # one table per statement, never a wildcard
        assert len(statement["Resource"]) == 1 and "Fn::GetAtt" in statement["Resource"][0]
    by_table = {s["Resource"][0]["Fn::GetAtt"][0]: s["Action"] for s in statements}
    # The portal: the caller's meter (GetItem) and day counters (Query), its invoices
    # (Query, GetItem); the error transaction's ERR# marker is a Put (PutItem).
    assert sorted(by_table["UsageTable"]) == [
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
    ]  # fmt: skip
    assert sorted(by_table["InvoicesTable"]) == ["dynamodb:GetItem", "dynamodb:Query"]
    # Reads only: nothing writes customers, tokens or invoices, nothing reads in bulk.
    writes = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
    for table in ("CustomersTable", "TokensTable", "InvoicesTable"):
        assert not any(a.endswith(writes) for a in by_table[table]), table
    assert not any(a.endswith(("Scan", "BatchGetItem", "PartiQLSelect")) for s in statements
                   for a in s["Action"])  # fmt: skip


def test_greedy_route_serves_the_portal_and_account_paths_with_get(template):
    # Every method of every path reaches the proxy, which routes GET /portal, /v1/account...
    resources = template["Resources"]
    assert resources["ApiProxyResource"]["Properties"]["PathPart"] == "{proxy+}"
    method = resources["ApiProxyMethod"]["Properties"]
    assert method["HttpMethod"] == "ANY" and method["ResourceId"] == {"Ref": "ApiProxyResource"}


def test_tables_are_on_demand_recoverable_encrypted_retained_with_ttl(template):
    tables = resources_of(template, "AWS::DynamoDB::Table")
    names = TableNames.for_stage("prod", "bedrock-billing").as_dict()
    assert {t["Properties"]["TableName"] for t in tables.values()} == set(names.values())
    for table in tables.values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    for logical, name in (("CustomersTable", "customers"), ("TokensTable", "tokens"),
                          ("UsageTable", "usage"), ("InvoicesTable", "invoices")):  # fmt: skip
        props = tables[logical]["Properties"]
        assert [k["AttributeName"] for k in props["KeySchema"]] == [
            k for k in TABLE_KEYS[name] if k
        ]
        ttl = props.get("TimeToLiveSpecification")
        if name in TTL_ATTRIBUTE:
            assert ttl == {"AttributeName": TTL_ATTRIBUTE[name], "Enabled": True}
        else:
            assert ttl is None
    assert "TimeToLiveSpecification" in tables["TokensTable"]["Properties"]


def test_log_bucket_is_encrypted_versioned_private_with_lifecycle(template):
    bucket = template["Resources"]["LogBucket"]
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["usage-log-to-infrequent-access"]["Prefix"] == "logs/"
    assert rules["old-versions-and-uploads"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert rules["athena-results-expire"]["ExpirationInDays"] == 30


def test_log_pipeline_decompresses_extracts_and_partitions_by_arrival_day(template):
    stream = template["Resources"]["UsageLogStream"]["Properties"]
    dest = stream["ExtendedS3DestinationConfiguration"]
    assert dest["Prefix"] == "logs/dt=!{timestamp:yyyy-MM-dd}/"
    assert dest["ErrorOutputPrefix"].startswith("delivery-errors/")
    assert not dest["ErrorOutputPrefix"].startswith(dest["Prefix"].split("/")[0])
    processors = dest["ProcessingConfiguration"]["Processors"]
    assert [p["Type"] for p in processors] == [
        "Decompression",
        "CloudWatchLogProcessing",
        "AppendDelimiterToRecord",
    ]
    assert processors[0]["Parameters"] == [
        {"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}
    ]
    assert processors[1]["Parameters"] == [
        {"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}
    ]
    subscription = template["Resources"]["UsageLogSubscription"]["Properties"]
    for event in (EVENT_INVOKE, EVENT_ERROR, EVENT_REFUSED):
        assert f'$.event_type = "{event}"' in subscription["FilterPattern"]
    assert subscription["LogGroupName"] == {"Ref": "ProxyLogGroup"}


def test_glue_table_is_core_table_input_with_bucket_resolved_by_cloudformation(template):
    table = template["Resources"]["GlueUsageTable"]["Properties"]["TableInput"]
    assert table["StorageDescriptor"]["Columns"] == glue_columns()
    assert table["StorageDescriptor"]["Location"] == {"Fn::Sub": "s3://${LogBucket}/logs/"}
    location = table["Parameters"]["storage.location.template"]
    # Fn::Sub would try to resolve ${dt}; ${!dt} makes it the literal Athena expects.
    assert location == {"Fn::Sub": "s3://${LogBucket}/logs/dt=${!dt}/"}
    assert table["Parameters"]["projection.enabled"] == "true"
    assert template["Resources"]["GlueDatabase"]["Properties"]["DatabaseInput"]["Name"] == (
        "bedrock_billing_prod"
    )


def test_athena_workgroup_enforces_encrypted_results_in_the_bucket(template):
    wg = template["Resources"]["AthenaWorkGroup"]["Properties"]
    assert wg["Name"] == "bedrock-billing-prod"
    conf = wg["WorkGroupConfiguration"]
    assert conf["EnforceWorkGroupConfiguration"] is True
    assert conf["ResultConfiguration"]["OutputLocation"] == {
        "Fn::Sub": "s3://${LogBucket}/athena-results/"
    }


def test_api_stage_throttles_and_every_method_reaches_the_proxy(template):
    stage = template["Resources"]["ApiStage"]["Properties"]
    settings = stage["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] == 50.0 and settings["ThrottlingBurstLimit"] == 100
    assert stage["StageName"] == "prod"
    methods = resources_of(template, "AWS::ApiGateway::Method")
    assert {m["Properties"]["HttpMethod"] for m in methods.values()} == {"ANY"}
    for method in methods.values():
        assert method["Properties"]["Integration"]["Type"] == "AWS_PROXY"
    assert template["Resources"]["Api"]["Properties"]["BinaryMediaTypes"] == ["*/*"]


def _resource_for(template, path: str) -> str:
    """Which API Gateway resource serves ``path``: the root, or the greedy {proxy+}."""
    if path == "/":
        return "root"
    greedy = [
        name
        for name, r in resources_of(template, "AWS::ApiGateway::Resource").items()
        if r["Properties"]["PathPart"] == "{proxy+}"
        and r["Properties"]["ParentId"] == {"Fn::GetAtt": ["Api", "RootResourceId"]}
    ]
    assert greedy, "no greedy resource under the root"
    return greedy[0]


def _permitted(template, method: str, path: str) -> bool:
    import fnmatch

    arn = f"arn:aws:execute-api:us-east-1:123456789012:abc123/prod/{method}{path}"
    for perm in resources_of(template, "AWS::Lambda::Permission").values():
        pattern = perm["Properties"]["SourceArn"]["Fn::Sub"]
        pattern = (
            pattern.replace("${AWS::Partition}", "aws")
            .replace("${AWS::Region}", "us-east-1")
            .replace("${AWS::AccountId}", "123456789012")
            .replace("${Api}", "abc123")
        )
        if fnmatch.fnmatchcase(arn, pattern):
            return True
    return False


@pytest.mark.parametrize(
    "method, path",
    [
        ("HEAD", "/"),
        ("POST", "/"),
        ("POST", "/bedrock"),
        ("POST", "/bedrock/converse"),
        ("OPTIONS", "/bedrock"),
        ("POST", "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke"),
        ("POST", "/model/us.anthropic.claude-3-haiku-20240307-v1:0/converse-stream"),
        ("POST", "/model/x/count-tokens"),
        ("GET", "/inference-profiles"),
    ],
)
def test_every_route_of_the_proxy_reaches_the_function(template, method, path):
    resource = _resource_for(template, path)
    methods = resources_of(template, "AWS::ApiGateway::Method").values()
    expected = (
        {"Fn::GetAtt": ["Api", "RootResourceId"]} if resource == "root" else {"Ref": resource}
    )
    serving = [
        m for m in methods
        if m["Properties"]["ResourceId"] == expected
        and m["Properties"]["HttpMethod"] in ("ANY", method)
    ]  # fmt: skip
    assert serving, (method, path)
    assert _permitted(template, method, path), (method, path)


def test_outputs_name_the_endpoint_an_sdk_takes(template):
    url = template["Outputs"]["BedrockEndpointUrl"]["Value"]["Fn::Sub"]
    assert url == "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/prod"


def test_a_changed_api_gets_a_new_deployment_resource():
    def deployment_ids(cfg):
        return [k for k, v in build_template(cfg)["Resources"].items()
                if v["Type"] == "AWS::ApiGateway::Deployment"]  # fmt: skip

    assert deployment_ids(config()) == deployment_ids(config(memory_mb=1024))
    # A new integration timeout is a change of the methods: a new snapshot.
    assert deployment_ids(config(timeout_seconds=300)) != deployment_ids(config())


def test_every_method_streams_the_function_answer_for_as_long_as_the_function_runs(template):
    fn = template["Resources"]["ProxyFunction"]["Properties"]
    assert fn["Timeout"] == 900  # 15 minutes: the longest streamed response API Gateway allows
    for method in resources_of(template, "AWS::ApiGateway::Method").values():
        integration = method["Properties"]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert integration["ResponseTransferMode"] == "STREAM"
        assert integration["IntegrationHttpMethod"] == "POST"
        assert integration["Uri"] == {
            "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2021-11-15/"
            "functions/${ProxyFunction.Arn}/response-streaming-invocations"
        }
        assert integration["TimeoutInMillis"] == fn["Timeout"] * 1000
    env = fn["Environment"]["Variables"]
    # The proxy's own integration deadline agrees with API Gateway's and Lambda's.
    assert env["BEDROCK_BILLING_INTEGRATION_TIMEOUT"] == str(fn["Timeout"])
    # Lambda's Python runtime hands over to the streaming Runtime-API loop in the zip.
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/var/task/bedrock_billing/proxy/stream_bootstrap"


def test_timeouts_follow_the_deploy_option_together():
    template = build_template(config(timeout_seconds=120))
    fn = template["Resources"]["ProxyFunction"]["Properties"]
    methods = resources_of(template, "AWS::ApiGateway::Method").values()
    assert fn["Timeout"] == 120
    assert fn["Environment"]["Variables"]["BEDROCK_BILLING_INTEGRATION_TIMEOUT"] == "120"
    assert {m["Properties"]["Integration"]["TimeoutInMillis"] for m in methods} == {120_000}


def test_api_gateway_may_invoke_the_function_and_nothing_else(template):
    perms = resources_of(template, "AWS::Lambda::Permission")
    # The notifier (issue 18) may be invoked by its daily rule alone, and never the proxy.
    notifier = perms.pop("NotifierDailyPermission")["Properties"]
    assert notifier["FunctionName"] == {"Ref": "NotifierFunction"}
    assert notifier["Principal"] == "events.amazonaws.com"
    assert notifier["SourceArn"] == {"Fn::GetAtt": ["NotifierDailyRule", "Arn"]}
    assert perms
    for perm in perms.values():
        props = perm["Properties"]
        # InvokeWithResponseStream is authorised by lambda:InvokeFunction.
        assert props["Action"] == "lambda:InvokeFunction"
        assert props["Principal"] == "apigateway.amazonaws.com"
        assert props["FunctionName"] == {"Fn::GetAtt": ["ProxyFunction", "Arn"]}
        assert props["SourceArn"]["Fn::Sub"].startswith(
            "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/"
        )


def test_alarms_cover_errors_throttles_5xx_usage_writes_and_log_delivery(template):
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    metrics = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"])
        for a in alarms.values()
        if "Namespace" in a["Properties"]  # metric-math alarms (the error rate) have none
    }
    assert {
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/ApiGateway", "5XXError"),
        ("BedrockBilling", "UsageWriteFailures"),
        ("AWS/Logs", "DeliveryErrors"),
        ("AWS/Firehose", "DeliveryToS3.DataFreshness"),
    } <= metrics
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"]["Fn::If"][0] == "HasAlarmTopic"
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""


def test_proxy_function_environment_and_settings(template):
    fn = template["Resources"]["ProxyFunction"]["Properties"]
    env = fn["Environment"]["Variables"]
    assert env["BEDROCK_BILLING_TOKENS_TABLE"] == "bedrock-billing-prod-tokens"
    assert env["BEDROCK_BILLING_CORS_ORIGINS"] == "https://app.example.com"
    assert json.loads(env["BEDROCK_BILLING_PRICES"])
    assert fn["Runtime"].startswith("python3.")
    assert fn["Handler"] == "bedrock_billing.proxy.handler.lambda_handler"
    assert fn["Code"] == {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}
    log_group = template["Resources"]["ProxyLogGroup"]["Properties"]
    assert log_group["RetentionInDays"] == 30
    assert log_group["LogGroupName"] == "/aws/lambda/" + fn["FunctionName"]


def test_outputs_name_the_api_url_bucket_database_and_workgroup(template):
    outputs = template["Outputs"]
    for name in ("ApiUrl", "LogBucket", "AthenaDatabase", "AthenaWorkGroup",
                 "AthenaOutputLocation"):  # fmt: skip
        assert name in outputs


def test_same_config_gives_the_same_template_bytes():
    assert template_json(config()) == template_json(config())


def test_template_out_makes_no_aws_call(tmp_path, monkeypatch):
    import botocore.client

    def refuse(*args, **kwargs):
        raise AssertionError("an AWS API was called")

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refuse)
    monkeypatch.setattr("boto3.Session", refuse)
    path = tmp_path / "t.json"
    write_template(config(stage="dev"), path)
    assert json.loads(path.read_text())["Resources"]["ProxyFunction"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"models": ()},
        {"stage": "Prod"},
        {"cors_origins": ("*",)},
        {"cors_origins": ("https://a.example.com/path",)},
        {"log_retention_days": 10},
        {"memory_mb": 64},
        {"prices_json": "{not json"},
        {"prices_json": json.dumps({f"model-{i}": {"input": "1.000"} for i in range(200)})},
    ],
)
def test_bad_settings_are_refused_with_a_clear_error(kwargs):
    kwargs.setdefault("models", ("anthropic.claude-3-haiku-20240307-v1:0",))
    with pytest.raises(InvalidInput):
        DeployConfig(**kwargs)
