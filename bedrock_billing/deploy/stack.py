"""CloudFormation mechanics: change sets, execution with event streaming, outputs, status.

Every function takes a boto3 CloudFormation client, so tests plug in moto or a Stubber,
and a ``sleep`` callable, so no test waits. Updates always keep CloudFormation's
rollback on: a failed update leaves the previous stack working.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import ClientError

from bedrock_billing.core.errors import AwsError

# Real CloudFormation refuses an empty change set with one of these reasons.
NO_CHANGE_REASONS = ("didn't contain changes", "No updates are to be performed")
SUCCESS_STATUSES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE", "DELETE_COMPLETE"}
CAPABILITIES = ["CAPABILITY_IAM"]


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str | None = None  # True | False | Conditional, for a Modify
    physical_id: str | None = None
    scope: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangeSet:
    id: str
    name: str
    stack_id: str
    change_set_type: str
    changes: tuple[Change, ...]
    no_changes: bool = False


@dataclass(frozen=True)
class StackEvent:
    timestamp: datetime | None
    logical_id: str
    resource_type: str
    status: str
    reason: str = ""
    physical_id: str = ""

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED")


class DeployFailed(AwsError):
    """The stack operation failed; ``failures`` are the resources that failed and why."""

    def __init__(self, message: str, final_status: str = "", failures=None):
        super().__init__(message)
        self.final_status = final_status
        self.failures: list[StackEvent] = list(failures or [])

    def __str__(self) -> str:
        return self.message


def _aws_error(exc: ClientError, doing: str) -> AwsError:
    err = exc.response.get("Error", {})
    return AwsError(f"{doing}: {err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": "))


def describe_stack(cfn, stack_name: str) -> dict | None:
    """The stack's description, or None when it does not exist."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        err = exc.response.get("Error", {})
        if err.get("Code") == "ValidationError" and "does not exist" in err.get("Message", ""):
            return None
        raise _aws_error(exc, f"cannot describe stack {stack_name}") from None
    return stacks[0] if stacks else None


def stack_outputs(cfn, stack_name: str) -> dict[str, str]:
    """The stack's outputs (the source of truth for a host that did not deploy)."""
    stack = describe_stack(cfn, stack_name)
    if stack is None:
        return {}
    return {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}


def stack_resources(cfn, stack_name: str) -> dict[str, dict]:
    """Logical id -> resource summary (type, physical id, status)."""
    out: dict[str, dict] = {}
    paginator = cfn.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        for summary in page.get("StackResourceSummaries", []):
            out[summary["LogicalResourceId"]] = summary
    return out


def new_change_set_name(prefix: str = "bedrock-billing") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _changes(raw: Iterable[dict]) -> list[Change]:
    out = []
    for item in raw:
        rc = item.get("ResourceChange") or {}
        if not rc:
            continue
        out.append(
            Change(
                action=rc.get("Action", ""),
                logical_id=rc.get("LogicalResourceId", ""),
                resource_type=rc.get("ResourceType", ""),
                replacement=rc.get("Replacement"),
                physical_id=rc.get("PhysicalResourceId"),
                scope=tuple(rc.get("Scope") or ()),
            )
        )
    return out


def create_change_set(
    cfn,
    *,
    stack_name: str,
    change_set_type: str,
    parameters: dict[str, str],
    template_body: str | None = None,
    template_url: str | None = None,
    resources_to_import: list[dict] | None = None,
    tags: dict[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 2.0,
    max_polls: int = 600,
) -> ChangeSet:
    """Create a change set and wait until CloudFormation has computed it.

    A change set with nothing to do comes back with ``no_changes`` set (real
    CloudFormation marks it FAILED with "didn't contain changes"; some emulators return
    it empty): the caller deletes it and reports success.
    """
    name = new_change_set_name()
    kwargs: dict = {
        "StackName": stack_name,
        "ChangeSetName": name,
        "ChangeSetType": change_set_type,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        "Capabilities": CAPABILITIES,
    }
    if template_url:
        kwargs["TemplateURL"] = template_url
    else:
        kwargs["TemplateBody"] = template_body
    if resources_to_import:
        kwargs["ResourcesToImport"] = resources_to_import
    if tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    try:
        created = cfn.create_change_set(**kwargs)
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        if change_set_type == "UPDATE" and any(r in message for r in NO_CHANGE_REASONS):
            # Some endpoints refuse an unchanged template outright: same meaning.
            return ChangeSet("", name, stack_name, change_set_type, (), no_changes=True)
        raise _aws_error(exc, f"cannot create a change set for {stack_name}") from None
    cs_id, stack_id = created["Id"], created.get("StackId", stack_name)

    for _ in range(max_polls):
        desc = cfn.describe_change_set(ChangeSetName=cs_id)
        status = desc.get("Status", "")
        if status in ("CREATE_COMPLETE", "FAILED"):
            break
        sleep(poll_seconds)
    else:
        raise AwsError(f"the change set {name} was not ready in time")

    raw = list(desc.get("Changes", []))
    token = desc.get("NextToken")
    while token:
        page = cfn.describe_change_set(ChangeSetName=cs_id, NextToken=token)
        raw.extend(page.get("Changes", []))
        token = page.get("NextToken")
    changes = tuple(_changes(raw))
    reason = desc.get("StatusReason") or ""
    no_changes = (status == "FAILED" and any(r in reason for r in NO_CHANGE_REASONS)) or (
        status == "CREATE_COMPLETE" and not changes and change_set_type == "UPDATE"
    )
    if status == "FAILED" and not no_changes:
        delete_change_set(cfn, cs_id)
        raise AwsError(f"CloudFormation refused the change set: {reason or 'no reason given'}")
    return ChangeSet(
        id=cs_id,
        name=name,
        stack_id=desc.get("StackId", stack_id),
        change_set_type=change_set_type,
        changes=changes,
        no_changes=no_changes,
    )


def delete_change_set(cfn, change_set_id: str) -> None:
    if not change_set_id:
        return
    try:
        cfn.delete_change_set(ChangeSetName=change_set_id)
    except ClientError:
        pass  # already gone: nothing to clean up


def _event(raw: dict) -> StackEvent:
    return StackEvent(
        timestamp=raw.get("Timestamp"),
        logical_id=raw.get("LogicalResourceId", ""),
        resource_type=raw.get("ResourceType", ""),
        status=raw.get("ResourceStatus", ""),
        reason=raw.get("ResourceStatusReason") or "",
        physical_id=raw.get("PhysicalResourceId") or "",
    )


class EventTail:
    """Yields a stack's new events, oldest first, once each.

    CloudFormation lists events newest first; reading stops at the first event seen
    before, so each poll costs one call while the stack is busy.
    """

    def __init__(self, cfn, stack_id: str):
        self.cfn = cfn
        self.stack_id = stack_id
        self.seen: set[str] = set()
        self.collected: list[StackEvent] = []

    def mark_existing(self) -> None:
        """Remember the events already there, so only those of this operation show."""
        page = self.cfn.describe_stack_events(StackName=self.stack_id)
        self.seen.update(e["EventId"] for e in page.get("StackEvents", []))

    def poll(self) -> list[StackEvent]:
        fresh: list[dict] = []
        paginator = self.cfn.get_paginator("describe_stack_events")
        done = False
        for page in paginator.paginate(StackName=self.stack_id):
            for raw in page.get("StackEvents", []):
                if raw["EventId"] in self.seen:
                    done = True
                    break
                fresh.append(raw)
            if done:
                break
        events = []
        for raw in reversed(fresh):
            self.seen.add(raw["EventId"])
            events.append(_event(raw))
        self.collected.extend(events)
        return events


def wait_for_stack(
    cfn,
    tail: EventTail,
    *,
    on_event: Callable[[StackEvent], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 5.0,
    max_polls: int = 1440,
) -> str:
    """Poll until the stack leaves every *_IN_PROGRESS state; return the final status."""
    for _ in range(max_polls):
        stack = cfn.describe_stacks(StackName=tail.stack_id)["Stacks"][0]
        status = stack["StackStatus"]
        for event in tail.poll():
            if on_event:
                on_event(event)
        if not status.endswith("_IN_PROGRESS"):
            return status
        sleep(poll_seconds)
    raise AwsError(f"the stack was still in progress after {max_polls} polls")


def failure_message(status: str, failures: list[StackEvent], doing: str) -> str:
    lines = [f"{doing} failed ({status})."]
    if status in ("ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"):
        lines.append("Nothing was kept from this attempt; retained tables and bucket are intact.")
    elif status == "UPDATE_ROLLBACK_COMPLETE":
        lines.append("CloudFormation rolled back: the previous version is still in place.")
    elif status.endswith("ROLLBACK_FAILED"):
        lines.append("The rollback itself failed: see the CloudFormation console before retrying.")
    if failures:
        lines.append("Failed resources:")
        for ev in failures:
            lines.append(f"  {ev.logical_id} ({ev.resource_type}) {ev.status}: {ev.reason}")
    return "\n".join(lines)


def failed_resources(events: list[StackEvent]) -> list[StackEvent]:
    """The events that say why: resources that failed, the stack's own line last."""
    resources = [e for e in events if e.failed and e.resource_type != "AWS::CloudFormation::Stack"]
    # "Resource creation cancelled" only says another resource failed first.
    primary = [e for e in resources if "cancelled" not in e.reason.lower()]
    return primary or resources or [e for e in events if e.failed]


def execute_change_set(
    cfn,
    change_set: ChangeSet,
    *,
    on_event: Callable[[StackEvent], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 5.0,
) -> str:
    """Execute and wait. Raises DeployFailed with the failing resources' reasons."""
    tail = EventTail(cfn, change_set.stack_id)
    tail.mark_existing()
    try:
        # Rollback stays on (no DisableRollback): a failed update restores the last
        # working stack.
        cfn.execute_change_set(ChangeSetName=change_set.id)
    except ClientError as exc:
        raise _aws_error(exc, "cannot execute the change set") from None
    status = wait_for_stack(cfn, tail, on_event=on_event, sleep=sleep, poll_seconds=poll_seconds)
    if status not in SUCCESS_STATUSES:
        failures = failed_resources(tail.collected)
        raise DeployFailed(
            failure_message(status, failures, f"{change_set.change_set_type.lower()} of the stack"),
            final_status=status,
            failures=failures,
        )
    return status


def delete_stack(
    cfn,
    stack_id: str,
    *,
    on_event: Callable[[StackEvent], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 5.0,
) -> str:
    tail = EventTail(cfn, stack_id)
    tail.mark_existing()
    try:
        cfn.delete_stack(StackName=stack_id)
    except ClientError as exc:
        raise _aws_error(exc, "cannot delete the stack") from None
    status = wait_for_stack(cfn, tail, on_event=on_event, sleep=sleep, poll_seconds=poll_seconds)
    if status != "DELETE_COMPLETE":
        failures = failed_resources(tail.collected)
        raise DeployFailed(
            failure_message(status, failures, "deletion of the stack"),
            final_status=status,
            failures=failures,
        )
    return status


def say(notify: Callable[[str], None] | None, text: str) -> None:
    """A progress note to the caller, when it listens."""
    if notify:
        notify(text)
