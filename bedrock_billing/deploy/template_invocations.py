"""The template's part for ``deploy --invocation-logs metadata``: what Bedrock's model
invocation logging needs in the stack's log bucket, and the Athena table over it.

- a bucket-policy statement letting ``bedrock.amazonaws.com`` put objects under
  ``<prefix>/AWSLogs/<account>/BedrockModelInvocationLogs/*``, for this account's Bedrock
  only (``aws:SourceAccount``, ``aws:SourceArn``), as Bedrock's user guide gives it
  (docs/reconcile.md);
- a lifecycle rule: the records move to Standard-IA with the usage log and expire after
  ``invocation_log_days`` (they are evidence for reconciliation, not the billing record);
- the Glue table ``invocation_log`` (core/invocationlog.py) with ``dt`` projected.

Pure: edits the resource dicts template.py built. The logging setting itself is not a
CloudFormation resource: deploy sets it after the stack (deploy/invocation_logging.py).
"""

from __future__ import annotations

from bedrock_billing.core.invocationlog import INVOCATION_LOG_PREFIX, INVOCATION_TABLE
from bedrock_billing.core.invocationlog import glue_table_input as _glue_table_input

from .config import DeployConfig

_PREFIX = INVOCATION_LOG_PREFIX.strip("/")
_LOCATION = (
    f"s3://${{LogBucket}}/{_PREFIX}/AWSLogs/${{AWS::AccountId}}/"
    "BedrockModelInvocationLogs/${AWS::Region}/"
)


def bedrock_write_statement() -> dict:
    return {
        "Sid": "AmazonBedrockLogsWrite",
        "Effect": "Allow",
        "Principal": {"Service": "bedrock.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": {
            "Fn::Sub": "${LogBucket.Arn}/" + _PREFIX + "/AWSLogs/${AWS::AccountId}/"
            "BedrockModelInvocationLogs/*"
        },
        "Condition": {
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
            "ArnLike": {
                "aws:SourceArn": {
                    "Fn::Sub": "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:*"
                }
            },
        },
    }


def lifecycle_rule(cfg: DeployConfig) -> dict:
    return {
        "Id": "invocation-logs",
        "Status": "Enabled",
        "Prefix": INVOCATION_LOG_PREFIX,
        "Transitions": [
            {"StorageClass": "STANDARD_IA", "TransitionInDays": cfg.log_transition_days}
        ],
        "ExpirationInDays": cfg.invocation_log_days,
    }


def glue_table(cfg: DeployConfig) -> dict:
    table_input = _glue_table_input(_LOCATION, INVOCATION_TABLE)
    params = table_input["Parameters"]
    # ${dt} is Athena's (projection), not CloudFormation's: escaped for Fn::Sub.
    params["storage.location.template"] = {
        "Fn::Sub": params["storage.location.template"].replace("${dt}", "${!dt}")
    }
    table_input["StorageDescriptor"]["Location"] = {"Fn::Sub": _LOCATION}
    return {
        "Type": "AWS::Glue::Table",
        "DependsOn": ["GlueDatabase"],
        "Properties": {
            "CatalogId": {"Ref": "AWS::AccountId"},
            "DatabaseName": cfg.glue_database,
            "TableInput": table_input,
        },
    }


def apply(cfg: DeployConfig, resources: dict[str, dict]) -> None:
    """Add the invocation-log pieces when ``cfg.invocation_logs`` is ``metadata``."""
    if cfg.invocation_logs != "metadata":
        return
    policy = resources["LogBucketPolicy"]["Properties"]["PolicyDocument"]
    policy["Statement"].append(bedrock_write_statement())
    bucket = resources["LogBucket"]["Properties"]
    bucket["LifecycleConfiguration"]["Rules"].append(lifecycle_rule(cfg))
    resources["GlueInvocationTable"] = glue_table(cfg)
