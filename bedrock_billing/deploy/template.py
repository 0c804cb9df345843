"""The stack's CloudFormation template, built in code from a ``DeployConfig``. Pure.

One template holds the tables, the proxy function and its role, the REST API, the log
group, the usage-log pipeline (template_logs.py), the Glue table, the Athena workgroup,
the alarms and, when asked for, a WAF web ACL and API access logs (template_edge.py).
Three parameters stay open so the same template can be handed to other tools: where the
proxy's zip is (``CodeBucket``/``CodeKey``) and where alarms go (``AlarmTopicArn``, empty
for none).
"""

from __future__ import annotations

import hashlib
import json

from bedrock_billing.core.schema import TABLE_KEYS, TTL_ATTRIBUTE

from . import (
    template_alarms,
    template_dashboard,
    template_edge,
    template_invocations,
    template_logs,
    template_notify,
    template_quicksight,
)
from .bedrock_arns import application_profile_statements, invoke_statements
from .config import ATHENA_RESULTS_PREFIX, LOG_PREFIX, DeployConfig

HANDLER = "bedrock_billing.proxy.handler.lambda_handler"
API_PATH = "bedrock"
# API Gateway streams the function's answer (ResponseTransferMode STREAM, invoked through
# Lambda's InvokeWithResponseStream): each event reaches the client as Bedrock makes it, and
# a streaming integration may run up to 15 minutes instead of 29 s (docs/decisions.md).
RESPONSE_TRANSFER_MODE = "STREAM"
STREAMING_INVOCATIONS_URI = (
    "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2021-11-15/"
    "functions/${ProxyFunction.Arn}/response-streaming-invocations"
)

# Logical id of each table resource: tables are adopted (imported) by these ids.
TABLE_LOGICAL_IDS = {name: f"{name.capitalize()}Table" for name in TABLE_KEYS}

# What the proxy does with each table, and nothing more (docs/deploy.md): it reads a token
# and its customer, and counts usage with conditional updates (single or transactional: a
# transaction's Update and Put are authorised as UpdateItem and PutItem, the error
# transaction puts its ERR# marker; AWS's "Using IAM with DynamoDB transactions"). The
# customer portal reads the caller's own meter (GetItem) and day counters (Query) and its
# own invoices (Query, GetItem); it never writes them, and nothing scans.
PROXY_TABLE_ACTIONS: dict[str, list[str]] = {
    "customers": ["dynamodb:GetItem"],
    "tokens": ["dynamodb:GetItem"],
    "usage": ["dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query"],
    "invoices": ["dynamodb:GetItem", "dynamodb:Query"],
}

# Stack output -> key of the CLI's configuration file (bedrock_billing/settings.py).
OUTPUT_CONFIG_KEYS = {
    "ApiUrl": "api_url",
    "TablePrefix": "table_prefix",
    "AthenaWorkGroup": "athena_workgroup",
    "AthenaDatabase": "athena_database",
    "AthenaTable": "athena_table",
    "AthenaOutputLocation": "athena_output_location",
    "LogBucket": "log_bucket",
    "LogPrefix": "log_prefix",
    **template_notify.OUTPUT_CONFIG_KEYS,
}


def _sub(text: str) -> dict:
    return {"Fn::Sub": text}


def table_resource(cfg: DeployConfig, name: str) -> dict:
    partition, sort = TABLE_KEYS[name]
    keys = [(partition, "HASH")] + ([(sort, "RANGE")] if sort else [])
    props: dict = {
        "TableName": getattr(cfg.tables, name),
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
        "KeySchema": [{"AttributeName": k, "KeyType": kind} for k, kind in keys],
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        # KMS with the AWS-managed key (aws/dynamodb): encryption visible in the template
        # and auditable in CloudTrail, at no key cost.
        "SSESpecification": {"SSEEnabled": True},
        "DeletionProtectionEnabled": True,
    }
    if name in TTL_ATTRIBUTE:
        props["TimeToLiveSpecification"] = {
            "AttributeName": TTL_ATTRIBUTE[name],
            "Enabled": True,
        }
    return {
        "Type": "AWS::DynamoDB::Table",
        # Customers, tokens, counters and invoices outlive the stack; a later deploy
        # imports them again (docs/deploy.md, "Adoption").
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": props,
    }


def proxy_role(cfg: DeployConfig) -> dict:
    table_statements = [
        {
            "Effect": "Allow",
            "Action": PROXY_TABLE_ACTIONS[name],
            "Resource": [{"Fn::GetAtt": [TABLE_LOGICAL_IDS[name], "Arn"]}],
        }
        for name in TABLE_KEYS
        if name in PROXY_TABLE_ACTIONS
    ]
    log_statement = {
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        # The log group's ARN ends in ":*", which covers its streams.
        "Resource": [{"Fn::GetAtt": ["ProxyLogGroup", "Arn"]}],
    }
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "proxy",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            *invoke_statements(cfg.models, cfg.routing_regions),
                            *application_profile_statements(
                                cfg.models, cfg.stage, cfg.routing_regions
                            ),
                            *table_statements,
                            log_statement,
                        ],
                    },
                }
            ],
        },
    }


def proxy_function(cfg: DeployConfig) -> dict:
    function = _proxy_function(cfg)
    if cfg.reserved_concurrency is not None:
        # At most this many requests run at once; more are throttled (429 through API
        # Gateway), and the rest of the account's Lambda functions keep their share.
        function["Properties"]["ReservedConcurrentExecutions"] = cfg.reserved_concurrency
    return function


def _proxy_function(cfg: DeployConfig) -> dict:
    return {
        "Type": "AWS::Lambda::Function",
        # The log group exists (with its retention) before Lambda would create its own.
        "DependsOn": ["ProxyLogGroup"],
        "Properties": {
            "FunctionName": cfg.function_name,
            "Description": f"bedrock-billing proxy, stage {cfg.stage}",
            "Runtime": cfg.runtime,
            # Pure Python, no native code: ARM is cheaper per GB-second.
            "Architectures": ["arm64"],
            "Handler": HANDLER,
            "MemorySize": cfg.memory_mb,
            "Timeout": cfg.timeout_seconds,
            "Role": {"Fn::GetAtt": ["ProxyRole", "Arn"]},
            "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}},
            "Environment": {"Variables": cfg.environment()},
        },
    }


def api_resources(cfg: DeployConfig) -> dict[str, dict]:
    integration = {
        "Type": "AWS_PROXY",
        "IntegrationHttpMethod": "POST",
        "ResponseTransferMode": RESPONSE_TRANSFER_MODE,
        # The function's own timeout: API Gateway never cuts a request the proxy is still
        # serving, and the proxy's deadline (the invocation's) ends it first, in-band.
        "TimeoutInMillis": cfg.timeout_seconds * 1000,
        "Uri": _sub(STREAMING_INVOCATIONS_URI),
    }
    # Every path and method reaches the proxy, which routes by itself (proxy/apis): the
    # Bedrock Runtime paths, the first version's /bedrock routes, preflights. A greedy
    # {proxy+} resource does not cover the stage's root, so the root has its own method
    # (Claude Code sends HEAD / before use). Authentication is the proxy's (Bearer tokens).
    methods = {
        name: {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ResourceId": resource,
                "HttpMethod": "ANY",
                "AuthorizationType": "NONE",
                "Integration": integration,
            },
        }
        for name, resource in (
            ("ApiProxyMethod", {"Ref": "ApiProxyResource"}),
            ("ApiRootMethod", {"Fn::GetAtt": ["Api", "RootResourceId"]}),
        )
    }
    # A Deployment is a snapshot: CloudFormation only makes a new one when its logical
    # id changes, so the id carries a hash of what it snapshots.
    digest = hashlib.sha256(json.dumps(methods, sort_keys=True).encode()).hexdigest()[:10]
    deployment_id = f"ApiDeployment{digest}"
    resources: dict[str, dict] = {
        "Api": {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {
                "Name": cfg.api_name,
                "Description": f"bedrock-billing proxy API, stage {cfg.stage}",
                "EndpointConfiguration": {"Types": ["REGIONAL"]},
                # Bodies both ways are passed as bytes: event-stream answers and model
                # answers in any encoding go out as the proxy's base64 decodes to, and
                # request bodies reach the function base64-encoded (it decodes them).
                "BinaryMediaTypes": ["*/*"],
            },
        },
        "ApiProxyResource": {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                "PathPart": "{proxy+}",
            },
        },
        **methods,
        deployment_id: {
            "Type": "AWS::ApiGateway::Deployment",
            "DependsOn": sorted(methods),
            "Properties": {"RestApiId": {"Ref": "Api"}},
        },
        "ApiStage": {
            "Type": "AWS::ApiGateway::Stage",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "DeploymentId": {"Ref": deployment_id},
                "StageName": cfg.api_stage,
                "MethodSettings": [
                    {
                        "ResourcePath": "/*",
                        "HttpMethod": "*",
                        "ThrottlingRateLimit": cfg.throttle_rate,
                        "ThrottlingBurstLimit": cfg.throttle_burst,
                        "MetricsEnabled": True,
                    }
                ],
            },
        },
    }
    # execute-api ARNs end in the resource path: "/*" for every path under the greedy
    # resource, and "/" alone for the stage's root.
    for name, path in (("ApiInvokeProxyPermission", "*"), ("ApiInvokeRootPermission", "")):
        resources[name] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Fn::GetAtt": ["ProxyFunction", "Arn"]},
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": _sub(
                    "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
                    f"${{Api}}/*/*/{path}"
                ),
            },
        }
    return resources


def outputs(cfg: DeployConfig) -> dict[str, dict]:
    # Names that CloudFormation does not compute are written literally, so the outputs
    # do not depend on resources some emulators skip.
    values: dict[str, object] = {
        "ApiUrl": _sub(
            "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"
            f"{cfg.api_stage}/{API_PATH}"
        ),
        # What an AWS SDK takes as endpoint_url (boto3, the JS SDK, AnthropicBedrock's
        # base_url, ANTHROPIC_BEDROCK_BASE_URL): Bedrock Runtime's paths go under it.
        "BedrockEndpointUrl": _sub(
            "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/" + cfg.api_stage
        ),
        "Stage": cfg.stage,
        "TablePrefix": cfg.table_prefix,
        "CustomersTable": {"Ref": "CustomersTable"},
        "TokensTable": {"Ref": "TokensTable"},
        "UsageTable": {"Ref": "UsageTable"},
        "InvoicesTable": {"Ref": "InvoicesTable"},
        "FunctionName": {"Ref": "ProxyFunction"},
        "LogBucket": {"Ref": "LogBucket"},
        "LogPrefix": LOG_PREFIX,
        "AthenaDatabase": cfg.glue_database,
        "AthenaTable": cfg.glue_table,
        "AthenaWorkGroup": cfg.workgroup,
        "AthenaOutputLocation": _sub("s3://${LogBucket}/" + ATHENA_RESULTS_PREFIX),
    }
    return {name: {"Value": value} for name, value in values.items()}


def build_template(cfg: DeployConfig) -> dict:
    resources: dict[str, dict] = {
        TABLE_LOGICAL_IDS[name]: table_resource(cfg, name) for name in TABLE_KEYS
    }
    resources["ProxyLogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "LogGroupName": cfg.log_group_name,
            "RetentionInDays": cfg.log_retention_days,
        },
    }
    resources["ProxyRole"] = proxy_role(cfg)
    resources["ProxyFunction"] = proxy_function(cfg)
    resources.update(api_resources(cfg))
    resources["LogBucket"] = template_logs.log_bucket(cfg)
    resources["LogBucketPolicy"] = template_logs.log_bucket_policy()
    resources.update(template_logs.firehose_resources(cfg))
    resources.update(template_logs.analytics_resources(cfg))
    template_invocations.apply(cfg, resources)
    resources.update(template_alarms.alarm_resources(cfg))
    resources.update(template_dashboard.dashboard_resources(cfg))
    resources.update(template_quicksight.quicksight_resources(cfg))
    resources.update(template_edge.edge_resources(cfg))
    template_edge.apply_to_stage(cfg, resources)
    resources.update(template_notify.notify_resources(cfg))
    template_notify.enable_stream(resources)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"bedrock-billing, stage {cfg.stage}: proxy, tables, usage log pipeline",
        "Parameters": {
            "CodeBucket": {
                "Type": "String",
                "Description": "S3 bucket of the proxy's zip (deploy uploads it)",
            },
            "CodeKey": {"Type": "String", "Description": "S3 key of the proxy's zip"},
            "AlarmTopicArn": {
                "Type": "String",
                "Default": "",
                "Description": "SNS topic for the alarms; empty for none",
            },
        },
        "Conditions": {
            "HasAlarmTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
        },
        "Resources": resources,
        "Outputs": {**outputs(cfg), **template_notify.notify_outputs()},
    }


def template_json(cfg: DeployConfig) -> str:
    """The template as stable JSON text: the same config always gives the same bytes."""
    return json.dumps(build_template(cfg), indent=2) + "\n"


def template_compact(cfg: DeployConfig) -> str:
    """The same template without indentation, for the API (its body limit is 51,200 bytes)."""
    return json.dumps(build_template(cfg), separators=(",", ":"))


def write_template(cfg: DeployConfig, path) -> None:
    """``deploy --template-out``: the template as a file; no AWS call of any kind."""
    from pathlib import Path

    Path(path).write_text(template_json(cfg), encoding="utf-8")
