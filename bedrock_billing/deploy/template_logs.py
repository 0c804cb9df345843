"""The usage-log half of the template: bucket, CloudWatch Logs -> Firehose -> S3, the Glue
table over it, and the Athena workgroup (the alarms are in template_alarms.py). Pure:
returns resource dicts.

Pipeline: the proxy prints one JSON line per request; a subscription filter on its log
group forwards the lines that carry an ``event_type`` to Firehose, whose built-in
processors un-gzip CloudWatch's batches and keep only each event's message, so S3 gets
the raw JSON lines under ``logs/dt=YYYY-MM-DD/`` (Firehose arrival date, UTC).
"""

from __future__ import annotations

from bedrock_billing.core.logschema import (
    EVENT_ADMITTED,
    EVENT_ERROR,
    EVENT_INVOKE,
    EVENT_REFUSED,
)
from bedrock_billing.core.logschema import glue_table_input as _glue_table_input

from .config import ATHENA_RESULTS_PREFIX, ERROR_PREFIX, LOG_PREFIX, DeployConfig

SUBSCRIPTION_PATTERN = (
    "{ "
    + " || ".join(
        f'($.event_type = "{event}")'
        for event in (EVENT_INVOKE, EVENT_ERROR, EVENT_REFUSED, EVENT_ADMITTED)
    )
    + " }"
)


def _sub(text: str) -> dict:
    return {"Fn::Sub": text}


def _arn(service: str, rest: str, region: bool = True, account: bool = True) -> dict:
    r = "${AWS::Region}" if region else ""
    a = "${AWS::AccountId}" if account else ""
    return _sub(f"arn:${{AWS::Partition}}:{service}:{r}:{a}:{rest}")


def log_bucket(cfg: DeployConfig) -> dict:
    return {
        "Type": "AWS::S3::Bucket",
        # The usage log is the billing record: deleting the stack keeps it (destroy
        # --delete-data removes it explicitly), and a later deploy imports it again.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "BucketName": _sub(cfg.log_bucket_sub),
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                        "BucketKeyEnabled": True,
                    }
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "usage-log-to-infrequent-access",
                        "Status": "Enabled",
                        "Prefix": LOG_PREFIX,
                        "Transitions": [
                            {
                                "StorageClass": "STANDARD_IA",
                                "TransitionInDays": cfg.log_transition_days,
                            }
                        ],
                    },
                    {
                        "Id": "athena-results-expire",
                        "Status": "Enabled",
                        "Prefix": ATHENA_RESULTS_PREFIX,
                        "ExpirationInDays": cfg.athena_results_expiration_days,
                    },
                    {
                        "Id": "old-versions-and-uploads",
                        "Status": "Enabled",
                        "NoncurrentVersionExpiration": {
                            "NoncurrentDays": cfg.noncurrent_expiration_days
                        },
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                    },
                ]
            },
        },
    }


def log_bucket_policy() -> dict:
    bucket_arn = {"Fn::GetAtt": ["LogBucket", "Arn"]}
    return {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Ref": "LogBucket"},
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        # A Deny: the one place an action wildcard is right (docs/deploy.md).
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket_arn, _sub("${LogBucket.Arn}/*")],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            },
        },
    }


def _assume(service: str, condition: dict | None = None) -> dict:
    statement: dict = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def firehose_resources(cfg: DeployConfig) -> dict[str, dict]:
    stream = cfg.delivery_stream_name
    firehose_log_group = f"/aws/kinesisfirehose/{stream}"
    bucket_arn = {"Fn::GetAtt": ["LogBucket", "Arn"]}
    # Built from the stream's fixed name rather than GetAtt, so emulators that skip
    # Firehose can still create the role (the filter's DependsOn keeps the order).
    stream_arn = _arn("firehose", f"deliverystream/{stream}")
    return {
        "FirehoseLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": firehose_log_group,
                "RetentionInDays": cfg.log_retention_days,
            },
        },
        "FirehoseLogStream": {
            "Type": "AWS::Logs::LogStream",
            "Properties": {
                "LogGroupName": {"Ref": "FirehoseLogGroup"},
                "LogStreamName": "S3Delivery",
            },
        },
        "FirehoseRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": _assume(
                    "firehose.amazonaws.com",
                    {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}},
                ),
                "Policies": [
                    {
                        "PolicyName": "deliver-usage-log",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": [
                                        "s3:GetBucketLocation",
                                        "s3:ListBucket",
                                        "s3:ListBucketMultipartUploads",
                                    ],
                                    "Resource": [bucket_arn],
                                },
                                {
                                    "Effect": "Allow",
                                    "Action": [
                                        "s3:PutObject",
                                        "s3:GetObject",
                                        "s3:AbortMultipartUpload",
                                    ],
                                    "Resource": [
                                        _sub("${LogBucket.Arn}/" + LOG_PREFIX + "*"),
                                        _sub("${LogBucket.Arn}/" + ERROR_PREFIX + "*"),
                                    ],
                                },
                                {
                                    "Effect": "Allow",
                                    "Action": ["logs:PutLogEvents"],
                                    "Resource": [
                                        _arn(
                                            "logs",
                                            f"log-group:{firehose_log_group}:log-stream:*",
                                        )
                                    ],
                                },
                            ],
                        },
                    }
                ],
            },
        },
        "UsageLogStream": {
            "Type": "AWS::KinesisFirehose::DeliveryStream",
            "Properties": {
                "DeliveryStreamName": stream,
                "DeliveryStreamType": "DirectPut",
                "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "AWS_OWNED_CMK"},
                "ExtendedS3DestinationConfiguration": {
                    "BucketARN": bucket_arn,
                    "RoleARN": {"Fn::GetAtt": ["FirehoseRole", "Arn"]},
                    # Arrival date: the usage queries widen their dt range by a day.
                    "Prefix": LOG_PREFIX + "dt=!{timestamp:yyyy-MM-dd}/",
                    "ErrorOutputPrefix": ERROR_PREFIX
                    + "!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/",
                    "BufferingHints": {"IntervalInSeconds": 300, "SizeInMBs": 64},
                    "CompressionFormat": "GZIP",
                    "FileExtension": ".jsonl.gz",
                    "CloudWatchLoggingOptions": {
                        "Enabled": True,
                        "LogGroupName": {"Ref": "FirehoseLogGroup"},
                        "LogStreamName": {"Ref": "FirehoseLogStream"},
                    },
                    "ProcessingConfiguration": {
                        "Enabled": True,
                        "Processors": [
                            {
                                "Type": "Decompression",
                                "Parameters": [
                                    {"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}
                                ],
                            },
                            {
                                "Type": "CloudWatchLogProcessing",
                                "Parameters": [
                                    {
                                        "ParameterName": "DataMessageExtraction",
                                        "ParameterValue": "true",
                                    }
                                ],
                            },
                            # One JSON object per line, also across record boundaries.
                            {"Type": "AppendDelimiterToRecord"},
                        ],
                    },
                },
            },
        },
        "LogsToFirehoseRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": _assume(
                    "logs.amazonaws.com",
                    {"StringLike": {"aws:SourceArn": _arn("logs", "*")}},
                ),
                "Policies": [
                    {
                        "PolicyName": "put-to-usage-log-stream",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"],
                                    "Resource": [stream_arn],
                                }
                            ],
                        },
                    }
                ],
            },
        },
        "UsageLogSubscription": {
            "Type": "AWS::Logs::SubscriptionFilter",
            "DependsOn": ["UsageLogStream"],
            "Properties": {
                "LogGroupName": {"Ref": "ProxyLogGroup"},
                "FilterName": "usage-log-to-s3",
                "FilterPattern": SUBSCRIPTION_PATTERN,
                "DestinationArn": stream_arn,
                "RoleArn": {"Fn::GetAtt": ["LogsToFirehoseRole", "Arn"]},
            },
        },
    }


def glue_table_input(cfg: DeployConfig) -> dict:
    """core's TableInput, with the bucket name resolved by CloudFormation.

    The location holds ``${LogBucket}`` for Fn::Sub; the projection template's own
    ``${dt}`` (for Athena) is escaped as ``${!dt}`` so Fn::Sub leaves it literal.
    """
    table_input = _glue_table_input(f"s3://${{LogBucket}}/{LOG_PREFIX}", cfg.glue_table)

    def convert(value):
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        if isinstance(value, str) and "${LogBucket}" in value:
            return _sub(value.replace("${dt}", "${!dt}"))
        return value

    return convert(table_input)


def analytics_resources(cfg: DeployConfig) -> dict[str, dict]:
    return {
        "GlueDatabase": {
            "Type": "AWS::Glue::Database",
            "Properties": {
                "CatalogId": {"Ref": "AWS::AccountId"},
                "DatabaseInput": {
                    "Name": cfg.glue_database,
                    "Description": f"bedrock-billing usage log, stage {cfg.stage}",
                },
            },
        },
        "GlueUsageTable": {
            "Type": "AWS::Glue::Table",
            "DependsOn": ["GlueDatabase"],
            "Properties": {
                "CatalogId": {"Ref": "AWS::AccountId"},
                "DatabaseName": cfg.glue_database,
                "TableInput": glue_table_input(cfg),
            },
        },
        "AthenaWorkGroup": {
            "Type": "AWS::Athena::WorkGroup",
            "Properties": {
                "Name": cfg.workgroup,
                "Description": f"bedrock-billing usage queries, stage {cfg.stage}",
                "State": "ENABLED",
                # Query history goes with the stack; results live in the retained bucket.
                "RecursiveDeleteOption": True,
                "WorkGroupConfiguration": {
                    "EnforceWorkGroupConfiguration": True,
                    "PublishCloudWatchMetricsEnabled": True,
                    "ResultConfiguration": {
                        "OutputLocation": _sub("s3://${LogBucket}/" + ATHENA_RESULTS_PREFIX),
                        "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
                    },
                },
            },
        },
    }
