"""``deploy``, ``status`` and ``destroy``: the use cases the CLI commands call.

deploy: package and upload the proxy, adopt retained resources (adopt.py), create a
change set, show it through ``confirm``, execute it while streaming events through
``on_event``, then write the CLI's configuration from the stack's outputs. The CLI owns
prompts and display; this module takes callbacks and a boto3 session.

``dry_run`` writes nothing at all: it compares the template with the deployed stack's,
resource by resource. ``preview`` is the change-set preview CloudFormation computes: it
has to write (the code, a change set, a stack in review) and removes what it made.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bedrock_billing.awsclient import BUSY_SUFFIX, AwsClients, aws_call
from bedrock_billing.core.errors import Conflict
from bedrock_billing.core.schema import log_bucket_name
from bedrock_billing.core.timeutil import iso_z
from bedrock_billing.settings import config_path as default_config_path
from bedrock_billing.settings import write_stage_config

from . import invocation_logging
from . import stack as cfn_stack
from .adopt import Adoptee, find_adoptees, import_template
from .config import DeployConfig
from .destroy import DestroyPlan, DestroyResult, destroy  # noqa: F401  (one entry point)
from .package import (
    Artifact,
    artifacts_bucket_name,
    build_zip,
    ensure_artifacts_bucket,
    upload_artifact,
)
from .stack import Change, StackEvent, say
from .template import OUTPUT_CONFIG_KEYS, template_compact

TEMPLATE_BODY_LIMIT = 51_200
STAGE_TAG = "bedrock-billing:stage"


@dataclass
class DeployResult:
    stack_name: str
    outcome: str  # created | updated | unchanged | dry-run | preview | cancelled
    region: str = ""
    changes: list[Change] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)  # logical ids imported
    outputs: dict[str, str] = field(default_factory=dict)
    config_path: Path | None = None
    code_key: str = ""
    code_uploaded: bool = False
    invocation_logging: object = None  # invocation_logging.LoggingResult, when set


@dataclass
class StackStatus:
    stack_name: str
    exists: bool
    status: str = ""
    reason: str | None = None
    last_updated: str | None = None
    region: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    resources: list[dict] = field(default_factory=list)


def _template_source(aws: AwsClients, body: str, bucket: str, stack_name: str) -> dict:
    """TemplateBody, or a TemplateURL in the artifacts bucket past the API's size limit."""
    if len(body.encode()) <= TEMPLATE_BODY_LIMIT:
        return {"template_body": body}
    import hashlib

    key = f"{stack_name}/template-{hashlib.sha256(body.encode()).hexdigest()[:32]}.json"
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode())
    return {"template_url": f"https://{bucket}.s3.{aws.region}.amazonaws.com/{key}"}


def _abandon(cfn, change_set: cfn_stack.ChangeSet, new_stack: bool) -> None:
    """Drop a change set that will not run; a stack it created for review goes too."""
    cfn_stack.delete_change_set(cfn, change_set.id)
    if new_stack:
        cfn.delete_stack(StackName=change_set.stack_id)


def _confirmed(confirm, changes, cfn, change_set, new_stack: bool) -> bool:
    """Ask; a refusal, or a failure while asking, drops the change set."""
    try:
        answer = bool(confirm(changes))
    except BaseException:
        _abandon(cfn, change_set, new_stack)
        raise
    if not answer:
        _abandon(cfn, change_set, new_stack)
    return answer


def _current_template(cfn, stack_name: str) -> dict:
    body = cfn.get_template(StackName=stack_name, TemplateStage="Original")["TemplateBody"]
    return body if isinstance(body, dict) else json.loads(body)


def template_changes(current: dict | None, new: dict) -> list[Change]:
    """The resources a deploy would add, modify or remove, from the two templates alone
    (what ``--dry-run`` shows: no AWS write; replacement is not known without a change set)."""
    old = (current or {}).get("Resources", {})
    fresh = new.get("Resources", {})
    changes = []
    for logical in sorted(set(old) | set(fresh)):
        before, after = old.get(logical), fresh.get(logical)
        if before == after:
            continue
        action = "Add" if before is None else "Remove" if after is None else "Modify"
        changes.append(Change(action, logical, (after or before).get("Type", "")))
    return changes


def _dry_run(aws: AwsClients, cfg: DeployConfig, existing: dict | None, result: DeployResult):
    """Compare the template with the deployed one; read only."""
    deployed = existing and existing["StackStatus"] != "REVIEW_IN_PROGRESS"
    current = _current_template(aws.cfn, cfg.stack_name) if deployed else None
    result.changes = template_changes(current, json.loads(template_compact(cfg)))
    result.outcome = "dry-run"
    return result


def _clean_up_preview(aws: AwsClients, bucket: str, made_bucket: bool, key: str, uploaded: bool):
    """Remove what a change-set preview wrote: the code it uploaded, the bucket it made."""
    s3 = aws.client("s3")
    if uploaded:
        s3.delete_object(Bucket=bucket, Key=key)
    if made_bucket:  # the preview's own bucket: whatever it holds (a large template) goes
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)


@aws_call
def _require_api_logging_role(apigateway, region: str) -> None:
    """Access logs need the account's API Gateway CloudWatch role (account-wide, so the stack
    does not set it): refuse before any change rather than fail and roll back the update."""
    if not apigateway.get_account().get("cloudwatchRoleArn"):
        raise Conflict(
            f"--access-logs needs API Gateway's CloudWatch Logs role in {region}: set it once "
            "with `aws apigateway update-account --patch-operations "
            "op=replace,path=/cloudwatchRoleArn,value=ROLE_ARN` (docs/deploy.md)"
        )


@aws_call
def deploy(
    cfg: DeployConfig,
    *,
    session=None,
    endpoint_url: str | None = None,
    confirm: Callable[[list[Change]], bool] | None = None,
    on_event: Callable[[StackEvent], None] | None = None,
    notify: Callable[[str], None] | None = None,
    dry_run: bool = False,
    preview: bool = False,
    settings=None,
    alarm_topic_arn: str | None = None,
    config_path: Path | str | None = None,
    write_config: bool = True,
    force_invocation_logs: bool = False,
    artifact: Artifact | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 5.0,
) -> DeployResult:
    """Deploy (create or update) the stack. ``confirm=None`` applies without asking.

    ``alarm_topic_arn=None`` keeps the topic the stack already has ("" removes it).
    ``dry_run`` writes nothing; ``preview`` computes a change set and removes what it made.
    """
    aws = AwsClients(session, endpoint_url, settings)
    cfn = aws.cfn
    name = cfg.stack_name
    result = DeployResult(stack_name=name, outcome="", region=aws.region)

    # 1. The stack as it is.
    existing = cfn_stack.describe_stack(cfn, name)
    status = existing["StackStatus"] if existing else ""
    if status == "ROLLBACK_COMPLETE":
        # The first creation failed and left an empty shell that can only be deleted;
        # the retained tables and bucket survive it.
        if dry_run or preview:
            raise Conflict(
                f"stack {name} failed its first creation (ROLLBACK_COMPLETE): "
                "a deploy without --dry-run or --preview deletes it and creates it again"
            )
        say(notify, f"Deleting stack {name}, left empty by a failed first creation")
        cfn_stack.delete_stack(
            cfn, existing["StackId"], on_event=on_event, sleep=sleep, poll_seconds=poll_seconds
        )
        existing, status = None, ""
    if status.endswith(BUSY_SUFFIX) and status != "REVIEW_IN_PROGRESS":
        raise Conflict(f"stack {name} is busy ({status}): wait for it to finish, then retry")
    if status.endswith("ROLLBACK_FAILED") or status == "DELETE_FAILED":
        raise Conflict(f"stack {name} is in {status}: repair it in the CloudFormation console")
    new_stack = existing is None or status == "REVIEW_IN_PROGRESS"
    if cfg.access_logs:
        _require_api_logging_role(aws.client("apigateway"), aws.region)
    if cfg.invocation_logs == "metadata":  # refuse before any write, not after the stack
        invocation_logging.check(
            aws.client("bedrock"), _log_bucket(aws, cfg), force=force_invocation_logs
        )
    if dry_run:
        return _dry_run(aws, cfg, existing, result)

    # 2. The code, content-addressed: the same source gives the same key.
    account = aws.account_id()
    bucket = artifacts_bucket_name(account, aws.region)
    artifact = artifact or build_zip()
    s3 = aws.client("s3")
    made_bucket = ensure_artifacts_bucket(s3, bucket, aws.region)
    result.code_key = artifact.key(name)
    result.code_uploaded = upload_artifact(s3, bucket, result.code_key, artifact)
    if result.code_uploaded:
        say(notify, f"Uploaded the proxy ({len(artifact.data)} bytes) to s3://{bucket}/")
    try:
        return _deploy_code(aws, cfg, existing, new_stack, bucket, result, confirm=confirm,
                            on_event=on_event, notify=notify, preview=preview,
                            alarm_topic_arn=alarm_topic_arn, config_path=config_path,
                            write_config=write_config, sleep=sleep,
                            poll_seconds=poll_seconds,
                            force_invocation_logs=force_invocation_logs)  # fmt: skip
    finally:
        if preview:
            _clean_up_preview(aws, bucket, made_bucket, result.code_key, result.code_uploaded)


def _deploy_code(aws, cfg, existing, new_stack, bucket, result, *, confirm, on_event, notify,
                 preview, alarm_topic_arn, config_path, write_config, sleep,
                 poll_seconds, force_invocation_logs=False) -> DeployResult:  # fmt: skip
    """Steps 3 to 5, once the code is in S3."""
    cfn, name, s3 = aws.cfn, cfg.stack_name, aws.client("s3")
    account = aws.account_id()

    # 3. Adopt retained tables and bucket that live outside the stack.
    in_stack = {} if new_stack else cfn_stack.stack_resources(cfn, name)
    adoptees = find_adoptees(
        cfg,
        ddb=aws.client("dynamodb"),
        s3=s3,
        account_id=account,
        region=aws.region,
        in_stack=in_stack,
    )
    tags = {STAGE_TAG: cfg.stage}
    if adoptees:
        outcome = _import(
            aws, cfg, adoptees, existing if not new_stack else None, tags,
            confirm=confirm, on_event=on_event, notify=notify, dry_run=preview,
            sleep=sleep, poll_seconds=poll_seconds, result=result,
        )  # fmt: skip
        if outcome:
            result.outcome = outcome
            return result
        new_stack = False

    # 4. The change set for the whole template.
    parameters = {"CodeBucket": bucket, "CodeKey": result.code_key}
    if alarm_topic_arn is None:
        previous = {
            p["ParameterKey"]: p.get("ParameterValue", "")
            for p in ((existing or {}).get("Parameters") or [])
        }
        alarm_topic_arn = previous.get("AlarmTopicArn", "") if not new_stack else ""
    parameters["AlarmTopicArn"] = alarm_topic_arn
    source = _template_source(aws, template_compact(cfg), bucket, name)
    change_set = cfn_stack.create_change_set(
        cfn,
        stack_name=name,
        change_set_type="CREATE" if new_stack else "UPDATE",
        parameters=parameters,
        tags=tags,
        sleep=sleep,
        poll_seconds=min(poll_seconds, 2.0),
        **source,
    )
    result.changes = list(change_set.changes)
    if change_set.no_changes:
        cfn_stack.delete_change_set(cfn, change_set.id)
        say(notify, f"Stack {name} is up to date: nothing to change")
        result.outcome = "unchanged"
    elif preview:
        _abandon(cfn, change_set, new_stack)
        result.outcome = "preview"
        return result
    elif confirm is not None and not _confirmed(
        confirm, result.changes, cfn, change_set, new_stack
    ):
        result.outcome = "cancelled"
        return result
    else:
        cfn_stack.execute_change_set(
            cfn, change_set, on_event=on_event, sleep=sleep, poll_seconds=poll_seconds
        )
        result.outcome = "created" if new_stack else "updated"

    # 5. Bedrock's invocation logging (one setting per account and region, not a resource).
    if cfg.invocation_logs == "metadata":
        result.invocation_logging = invocation_logging.enable(
            aws.client("bedrock"), _log_bucket(aws, cfg), force=force_invocation_logs
        )
        say(notify, f"Bedrock model invocation logging: {result.invocation_logging.current}")

    # 6. Outputs, and the CLI's configuration from them.
    result.outputs = cfn_stack.stack_outputs(cfn, name)
    if write_config:
        path = Path(config_path) if config_path else default_config_path()
        result.config_path = write_stage_config(
            path, cfg.stage, stage_config_values(cfg, aws.region, result.outputs)
        )
    return result


def _import(aws, cfg, adoptees: list[Adoptee], existing, tags, *, confirm, on_event, notify,
            dry_run, sleep, poll_seconds, result: DeployResult) -> str | None:  # fmt: skip
    """Run the IMPORT change set; return an outcome when the deploy stops here."""
    cfn = aws.cfn
    name = cfg.stack_name
    current = _current_template(cfn, name) if existing else None
    parameters = {}
    if existing:
        # An import may change nothing else: the parameters keep their values.
        parameters = {
            p["ParameterKey"]: p.get("ParameterValue", "") for p in existing.get("Parameters", [])
        }
    body = json.dumps(import_template(current, adoptees), sort_keys=True, separators=(",", ":"))
    names = ", ".join(next(iter(a.identifier.values())) for a in adoptees)
    say(notify, f"Adopting existing resources into stack {name}: {names}")
    change_set = cfn_stack.create_change_set(
        cfn,
        stack_name=name,
        change_set_type="IMPORT",
        parameters=parameters,
        template_body=body,
        resources_to_import=[a.to_import() for a in adoptees],
        tags=tags,
        sleep=sleep,
        poll_seconds=min(poll_seconds, 2.0),
    )
    result.changes = list(change_set.changes)
    result.adopted = [a.logical_id for a in adoptees]
    if dry_run:
        say(notify, "The rest of the template is previewed after the import has run.")
        _abandon(cfn, change_set, existing is None)
        return "preview"
    if confirm is not None and not _confirmed(
        confirm, result.changes, cfn, change_set, existing is None
    ):
        return "cancelled"
    cfn_stack.execute_change_set(
        cfn, change_set, on_event=on_event, sleep=sleep, poll_seconds=poll_seconds
    )
    return None


def _log_bucket(aws: AwsClients, cfg: DeployConfig) -> str:
    return log_bucket_name(cfg.stage, cfg.table_prefix, aws.account_id(), aws.region)


def stage_config_values(cfg: DeployConfig, region: str, outputs: dict[str, str]) -> dict:
    values = {
        "region": region,
        "table_prefix": cfg.table_prefix,
        "stack_name": cfg.stack_name,
        # A later `deploy` without --model keeps these: a re-run never narrows the role.
        "deploy_models": ",".join(cfg.models),
        # A later deploy keeps the bucket policy Bedrock's logging needs (template_invocations)
        "invocation_logs": cfg.invocation_logs,
    }
    for output, key in OUTPUT_CONFIG_KEYS.items():
        if outputs.get(output):
            values[key] = outputs[output]
    return values


@aws_call
def stack_status(
    stack_name: str, *, session=None, endpoint_url: str | None = None, settings=None
) -> StackStatus:
    aws = AwsClients(session, endpoint_url, settings)
    stack = cfn_stack.describe_stack(aws.cfn, stack_name)
    if stack is None:
        return StackStatus(stack_name=stack_name, exists=False, region=aws.region)
    resources = [
        {
            "logical_id": logical,
            "type": r.get("ResourceType", ""),
            "physical_id": r.get("PhysicalResourceId", ""),
            "status": r.get("ResourceStatus", ""),
        }
        for logical, r in sorted(cfn_stack.stack_resources(aws.cfn, stack_name).items())
    ]
    updated = stack.get("LastUpdatedTime") or stack.get("CreationTime")
    return StackStatus(
        stack_name=stack_name,
        exists=True,
        status=stack["StackStatus"],
        reason=stack.get("StackStatusReason") or None,
        last_updated=iso_z(updated.replace(microsecond=0)) if updated else None,
        region=aws.region,
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
        resources=resources,
    )


@aws_call
def read_outputs(
    stack_name: str, *, session=None, endpoint_url: str | None = None, settings=None
) -> dict:
    """The stack's outputs: what a host that did not deploy reads instead of the file."""
    aws = AwsClients(session, endpoint_url, settings)
    return cfn_stack.stack_outputs(aws.cfn, stack_name)
