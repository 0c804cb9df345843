"""Adoption: bring tables and the log bucket that exist outside the stack into it.

``bedrock-billing init`` can create the tables before any deploy, and ``destroy`` keeps
the tables and the usage bucket (DeletionPolicy Retain). Creating them again would fail
("already exists"), so the deploy first runs a CloudFormation IMPORT change set that
takes them over as they are, then a normal update that brings their settings (point-in-
time recovery, TTL, encryption, deletion protection...) to the template's.

The import describes each resource as it really is, so the update that follows shows
and applies exactly the differences.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from bedrock_billing.core.errors import AwsError, Conflict
from bedrock_billing.core.schema import TABLE_KEYS

from .config import DeployConfig
from .template import TABLE_LOGICAL_IDS


@dataclass(frozen=True)
class Adoptee:
    logical_id: str
    resource_type: str
    identifier: dict[str, str]
    resource: dict  # the template entry describing it as it is

    def to_import(self) -> dict:
        return {
            "ResourceType": self.resource_type,
            "LogicalResourceId": self.logical_id,
            "ResourceIdentifier": self.identifier,
        }


def _retain(resource_type: str, props: dict) -> dict:
    return {
        "Type": resource_type,
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": props,
    }


def _table_as_is(ddb, cfg: DeployConfig, name: str) -> Adoptee | None:
    table_name = getattr(cfg.tables, name)
    try:
        desc = ddb.describe_table(TableName=table_name)["Table"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    partition, sort = TABLE_KEYS[name]
    expected = [(partition, "HASH")] + ([(sort, "RANGE")] if sort else [])
    actual = [(k["AttributeName"], k["KeyType"]) for k in desc["KeySchema"]]
    if actual != expected:
        raise Conflict(
            f"table {table_name} exists with keys {actual}, not {expected}: it cannot be "
            "adopted; rename or remove it, or deploy with another --table-prefix"
        )
    key_names = {k for k, _ in actual}
    props: dict = {
        "TableName": table_name,
        "KeySchema": desc["KeySchema"],
        "AttributeDefinitions": [
            a for a in desc["AttributeDefinitions"] if a["AttributeName"] in key_names
        ],
    }
    mode = (desc.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    props["BillingMode"] = mode
    if mode == "PROVISIONED":
        tp = desc.get("ProvisionedThroughput", {})
        props["ProvisionedThroughput"] = {
            "ReadCapacityUnits": tp.get("ReadCapacityUnits", 1),
            "WriteCapacityUnits": tp.get("WriteCapacityUnits", 1),
        }
    if (desc.get("SSEDescription") or {}).get("Status") in ("ENABLED", "ENABLING"):
        props["SSESpecification"] = {"SSEEnabled": True}
    if desc.get("DeletionProtectionEnabled"):
        props["DeletionProtectionEnabled"] = True
    ttl = ddb.describe_time_to_live(TableName=table_name).get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and ttl.get("AttributeName"):
        props["TimeToLiveSpecification"] = {"AttributeName": ttl["AttributeName"], "Enabled": True}
    backups = ddb.describe_continuous_backups(TableName=table_name)
    pitr = backups.get("ContinuousBackupsDescription", {}).get("PointInTimeRecoveryDescription", {})
    if pitr.get("PointInTimeRecoveryStatus") == "ENABLED":
        props["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    return Adoptee(
        logical_id=TABLE_LOGICAL_IDS[name],
        resource_type="AWS::DynamoDB::Table",
        identifier={"TableName": table_name},
        resource=_retain("AWS::DynamoDB::Table", props),
    )


def _bucket_as_is(s3, bucket: str) -> Adoptee | None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchBucket", "NotFound"):
            return None
        if code in ("403", "AccessDenied"):
            raise AwsError(
                f"the bucket name {bucket} is taken by another account or not readable"
            ) from None
        raise
    return Adoptee(
        logical_id="LogBucket",
        resource_type="AWS::S3::Bucket",
        identifier={"BucketName": bucket},
        resource=_retain("AWS::S3::Bucket", {"BucketName": bucket}),
    )


def find_adoptees(
    cfg: DeployConfig, *, ddb, s3, account_id: str, region: str, in_stack: dict[str, dict]
) -> list[Adoptee]:
    """Retained resources that exist in the account but not (yet) in the stack."""
    found: list[Adoptee] = []
    for name in TABLE_KEYS:
        if TABLE_LOGICAL_IDS[name] in in_stack:
            continue
        adoptee = _table_as_is(ddb, cfg, name)
        if adoptee:
            found.append(adoptee)
    if "LogBucket" not in in_stack:
        adoptee = _bucket_as_is(s3, cfg.log_bucket_name(account_id, region))
        if adoptee:
            found.append(adoptee)
    return found


def import_template(current: dict | None, adoptees: list[Adoptee]) -> dict:
    """The stack's current template plus the adopted resources, and nothing else:
    CloudFormation refuses an import that also changes other resources."""
    template = dict(current or {"AWSTemplateFormatVersion": "2010-09-09"})
    resources = dict(template.get("Resources") or {})
    for adoptee in adoptees:
        resources[adoptee.logical_id] = adoptee.resource
    template["Resources"] = resources
    return template
