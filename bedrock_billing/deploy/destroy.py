"""``destroy``: delete the stack, keeping the tables and the usage bucket unless asked.

Both carry ``DeletionPolicy: Retain``, so CloudFormation leaves them; ``delete_data``
then removes them explicitly (deletion protection off, every object version gone).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from bedrock_billing.awsclient import BUSY_SUFFIX, AwsClients, aws_call
from bedrock_billing.core.errors import Conflict, NotFound

from . import stack as cfn_stack
from .stack import StackEvent, say


@dataclass
class DestroyPlan:
    stack_name: str
    delete_data: bool
    kept: list[str]  # physical names of the tables and bucket kept (or deleted if asked)


@dataclass
class DestroyResult:
    stack_name: str
    outcome: str  # deleted | cancelled
    kept: list[str] = field(default_factory=list)
    data_deleted: list[str] = field(default_factory=list)


_RETAINED_TYPES = {"AWS::DynamoDB::Table", "AWS::S3::Bucket"}


@aws_call
def destroy(
    stack_name: str,
    *,
    session=None,
    endpoint_url: str | None = None,
    confirm: Callable[[DestroyPlan], bool] | None = None,
    on_event: Callable[[StackEvent], None] | None = None,
    notify: Callable[[str], None] | None = None,
    delete_data: bool = False,
    settings=None,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 5.0,
) -> DestroyResult:
    """Delete the stack. The tables and the usage bucket are kept unless ``delete_data``."""
    aws = AwsClients(session, endpoint_url, settings)
    cfn = aws.cfn
    stack = cfn_stack.describe_stack(cfn, stack_name)
    if stack is None:
        raise NotFound(f"stack {stack_name} does not exist")
    if stack["StackStatus"].endswith(BUSY_SUFFIX) and stack["StackStatus"] != "REVIEW_IN_PROGRESS":
        raise Conflict(f"stack {stack_name} is busy ({stack['StackStatus']}): retry when done")
    retained = [
        (r["ResourceType"], r.get("PhysicalResourceId", ""))
        for r in cfn_stack.stack_resources(cfn, stack_name).values()
        if r.get("ResourceType") in _RETAINED_TYPES and r.get("PhysicalResourceId")
    ]
    plan = DestroyPlan(stack_name, delete_data, sorted(p for _, p in retained))
    if confirm is not None and not confirm(plan):
        return DestroyResult(stack_name=stack_name, outcome="cancelled", kept=plan.kept)
    cfn_stack.delete_stack(
        cfn, stack["StackId"], on_event=on_event, sleep=sleep, poll_seconds=poll_seconds
    )
    result = DestroyResult(stack_name=stack_name, outcome="deleted")
    if not delete_data:
        result.kept = plan.kept
        return result
    for resource_type, physical in sorted(retained):
        if resource_type == "AWS::DynamoDB::Table":
            _delete_table(aws.client("dynamodb"), physical)
        else:
            _delete_bucket(aws.client("s3"), physical)
        say(notify, f"Deleted {physical}")
        result.data_deleted.append(physical)
    return result


def _delete_table(ddb, name: str) -> None:
    try:
        ddb.update_table(TableName=name, DeletionProtectionEnabled=False)
        ddb.delete_table(TableName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise


def _delete_bucket(s3, name: str) -> None:
    """Every version and delete marker, then the bucket (versioned buckets need this)."""
    paginator = s3.get_paginator("list_object_versions")
    try:
        for page in paginator.paginate(Bucket=name):
            keys = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for start in range(0, len(keys), 1000):
                s3.delete_objects(
                    Bucket=name, Delete={"Objects": keys[start : start + 1000], "Quiet": True}
                )
        s3.delete_bucket(Bucket=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise
