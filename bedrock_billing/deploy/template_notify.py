"""The notifier's resources: the usage table's stream, the notifier function fed by it
through a filtered event-source mapping, its dead-letter queue and least-privilege role,
the operator's alerts topic and the KMS key of the webhook signing secrets. Pure.

Nothing here touches the proxy: it keeps its calls and role; the stream is written by
DynamoDB itself (docs/alerts.md).
"""

from __future__ import annotations

import json

from bedrock_billing.core.alerts import (
    DEFAULT_THRESHOLDS,
    STREAM_FILTER,
    alerts_topic_name,
    webhook_key_alias,
)

from .config import DeployConfig

NOTIFIER_HANDLER = "bedrock_billing.notifier.handler.lambda_handler"
NOTIFIER_TIMEOUT = 300  # a batch may wait out several deliveries' retries (15 s each)

# Stack output -> key of the CLI's configuration file.
OUTPUT_CONFIG_KEYS = {"AlertsTopicArn": "alerts_topic_arn", "WebhookKeyAlias": "webhook_key"}

# The key's administrators are the account's principals that IAM allows (the root
# statement); listed actions, no wildcard, so the policy says exactly what it grants.
KEY_ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]


def _arn(logical: str) -> dict:
    return {"Fn::GetAtt": [logical, "Arn"]}


def notifier_name(cfg: DeployConfig) -> str:
    return f"{cfg.base}-notifier"


def enable_stream(resources: dict[str, dict]) -> None:
    """The usage table's stream: old and new images, so a change's delta is in the record."""
    props = resources["UsageTable"]["Properties"]
    props["StreamSpecification"] = {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def notifier_role(cfg: DeployConfig) -> dict:
    statements = [
        {
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
            ],
            "Resource": [{"Fn::GetAtt": ["UsageTable", "StreamArn"]}],
        },
        {
            # Settings and markers and kept events live beside the meter in the usage table.
            "Effect": "Allow",
            # Query: the daily anomaly run reads each customer's DAY# counters.
            "Action": [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
            ],
            "Resource": [_arn("UsageTable")],
        },
        {
            # Scan: the daily anomaly run lists the customers.
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Scan"],
            "Resource": [_arn("CustomersTable")],
        },
        # The daily run looks for tokens about to expire (token.expiring).
        {"Effect": "Allow", "Action": ["dynamodb:Scan"], "Resource": [_arn("TokensTable")]},
        {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": [{"Ref": "AlertsTopic"}]},
        {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [_arn("WebhookKey")]},
        {
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": [_arn("NotifierDeadLetterQueue")],
        },
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [_arn("NotifierLogGroup")],
        },
    ]
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
                    "PolicyName": "notifier",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                }
            ],
        },
    }


def notify_resources(cfg: DeployConfig) -> dict[str, dict]:
    name = notifier_name(cfg)
    tables = cfg.tables
    return {
        "AlertsTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {
                "TopicName": alerts_topic_name(cfg.base),
                "DisplayName": f"bedrock-billing {cfg.stage} alerts",
                "KmsMasterKeyId": "alias/aws/sns",
            },
        },
        "WebhookKey": {
            "Type": "AWS::KMS::Key",
            "DeletionPolicy": "Retain",  # the stored secrets cannot be read without it
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "Description": f"bedrock-billing {cfg.stage}: webhook signing secrets",
                "EnableKeyRotation": True,
                "KeyPolicy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "AccountAdministers",
                            "Effect": "Allow",
                            "Principal": {
                                "AWS": {
                                    "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"
                                }
                            },
                            "Action": KEY_ADMIN_ACTIONS + ["kms:Decrypt"],
                            "Resource": "*",  # in a key policy: this key
                        }
                    ],
                },
            },
        },
        "WebhookKeyAlias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {
                "AliasName": webhook_key_alias(cfg.base),
                "TargetKeyId": {"Ref": "WebhookKey"},
            },
        },
        "NotifierDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": f"{name}-dlq",
                "MessageRetentionPeriod": 1209600,  # 14 days, SQS's maximum
                "SqsManagedSseEnabled": True,
            },
        },
        "NotifierLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": f"/aws/lambda/{name}",
                "RetentionInDays": cfg.log_retention_days,
            },
        },
        "NotifierRole": notifier_role(cfg),
        "NotifierFunction": {
            "Type": "AWS::Lambda::Function",
            "DependsOn": ["NotifierLogGroup"],
            "Properties": {
                "FunctionName": name,
                "Description": f"bedrock-billing usage alerts and webhooks, stage {cfg.stage}",
                "Runtime": cfg.runtime,
                "Architectures": ["arm64"],
                "Handler": NOTIFIER_HANDLER,
                "MemorySize": 256,
                "Timeout": NOTIFIER_TIMEOUT,
                "Role": _arn("NotifierRole"),
                "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}},
                "Environment": {
                    "Variables": {
                        "USAGE_TABLE": tables.usage,
                        "CUSTOMERS_TABLE": tables.customers,
                        "TOKENS_TABLE": tables.tokens,
                        "ALERTS_TOPIC_ARN": {"Ref": "AlertsTopic"},
                        "ALERT_THRESHOLDS": ",".join(str(t) for t in DEFAULT_THRESHOLDS),
                    }
                },
            },
        },
        "NotifierDailyRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": f"bedrock-billing {cfg.stage}: daily token.expiring and anomalies",
                "ScheduleExpression": "cron(0 6 * * ? *)",
                "State": "ENABLED",
                "Targets": [{"Arn": _arn("NotifierFunction"), "Id": "notifier"}],
            },
        },
        "NotifierDailyPermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": "NotifierFunction"},
                "Principal": "events.amazonaws.com",
                "SourceArn": _arn("NotifierDailyRule"),
            },
        },
        "NotifierEventSourceMapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "FunctionName": {"Ref": "NotifierFunction"},
                "EventSourceArn": {"Fn::GetAtt": ["UsageTable", "StreamArn"]},
                "StartingPosition": "LATEST",
                "BatchSize": 100,
                "MaximumBatchingWindowInSeconds": 1,
                "MaximumRetryAttempts": 5,
                "MaximumRecordAgeInSeconds": 3600,
                "BisectBatchOnFunctionError": True,
                "FilterCriteria": {
                    "Filters": [{"Pattern": json.dumps(STREAM_FILTER, separators=(",", ":"))}]
                },
                "DestinationConfig": {
                    "OnFailure": {"Destination": _arn("NotifierDeadLetterQueue")}
                },
            },
        },
    }


def notify_outputs() -> dict[str, dict]:
    return {
        "AlertsTopicArn": {"Value": {"Ref": "AlertsTopic"}},
        "WebhookKeyAlias": {"Value": {"Ref": "WebhookKeyAlias"}},
        "NotifierFunctionName": {"Value": {"Ref": "NotifierFunction"}},
    }
