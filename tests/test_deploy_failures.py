"""Failed deploys, no-change answers and adoption, with botocore's Stubber and canned events."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from bedrock_billing.core.errors import AwsError, Conflict
from bedrock_billing.core.schema import TABLE_KEYS
from bedrock_billing.deploy import stack as cfn_stack
from bedrock_billing.deploy.adopt import find_adoptees, import_template
from tests.deploy_fixtures import config

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/bedrock-billing-prod/abc"
CS_ID = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/cs/1"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def client():
    return boto3.client(
        "cloudformation", region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x",
    )  # fmt: skip


def event(n, logical, rtype, status, reason=""):
    raw = {
        "StackId": STACK_ID,
        "EventId": f"e{n}",
        "StackName": "bedrock-billing-prod",
        "LogicalResourceId": logical,
        "ResourceType": rtype,
        "Timestamp": T0.replace(second=n),
        "ResourceStatus": status,
    }
    if reason:
        raw["ResourceStatusReason"] = reason
    return raw


def stub_change_set(stubber, status, changes=(), reason=None, change_set_type="UPDATE"):
    stubber.add_response(
        "create_change_set",
        {"Id": CS_ID, "StackId": STACK_ID},
        {
            "StackName": "bedrock-billing-prod",
            "ChangeSetName": ANY,
            "ChangeSetType": change_set_type,
            "Parameters": ANY,
            "Capabilities": ["CAPABILITY_IAM"],
            "TemplateBody": ANY,
        },
    )
    desc = {"ChangeSetId": CS_ID, "StackId": STACK_ID, "Status": status, "Changes": list(changes)}
    if reason:
        desc["StatusReason"] = reason
    stubber.add_response("describe_change_set", desc, {"ChangeSetName": CS_ID})


def create(cfn, change_set_type="UPDATE"):
    return cfn_stack.create_change_set(
        cfn, stack_name="bedrock-billing-prod", change_set_type=change_set_type,
        parameters={"CodeBucket": "b"}, template_body="{}", sleep=lambda s: None,
    )  # fmt: skip


MODIFY = {
    "Type": "Resource",
    "ResourceChange": {
        "Action": "Modify",
        "LogicalResourceId": "ProxyFunction",
        "ResourceType": "AWS::Lambda::Function",
        "Replacement": "False",
    },
}


def test_failed_update_reports_failing_resources_and_keeps_rollback_on():
    cfn = client()
    with Stubber(cfn) as stubber:
        stub_change_set(stubber, "CREATE_COMPLETE", [MODIFY])
        stubber.add_response(
            "describe_stack_events",
            {
                "StackEvents": [
                    event(
                        0, "bedrock-billing-prod", "AWS::CloudFormation::Stack", "UPDATE_COMPLETE"
                    )
                ]
            },  # fmt: skip
            {"StackName": STACK_ID},
        )
        # Exactly these parameters: no DisableRollback.
        stubber.add_response("execute_change_set", {}, {"ChangeSetName": CS_ID})
        stubber.add_response(
            "describe_stacks",
            {"Stacks": [{"StackName": "bedrock-billing-prod", "StackId": STACK_ID,
                         "CreationTime": T0, "StackStatus": "UPDATE_ROLLBACK_COMPLETE"}]},
            {"StackName": STACK_ID},
        )  # fmt: skip
        canned = [
            event(6, "bedrock-billing-prod", "AWS::CloudFormation::Stack",
                  "UPDATE_ROLLBACK_COMPLETE"),
            event(5, "ProxyFunction", "AWS::Lambda::Function", "UPDATE_COMPLETE"),
            event(4, "bedrock-billing-prod", "AWS::CloudFormation::Stack",
                  "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update"),
            event(3, "ApiStage", "AWS::ApiGateway::Stage", "UPDATE_FAILED",
                  "Resource update cancelled"),
            event(2, "ProxyFunction", "AWS::Lambda::Function", "UPDATE_FAILED",
                  "Memory size 99999 is above the maximum"),
            event(1, "bedrock-billing-prod", "AWS::CloudFormation::Stack",
                  "UPDATE_IN_PROGRESS", "User Initiated"),
            event(0, "bedrock-billing-prod", "AWS::CloudFormation::Stack", "UPDATE_COMPLETE"),
        ]  # fmt: skip
        stubber.add_response("describe_stack_events", {"StackEvents": canned},
                             {"StackName": STACK_ID})  # fmt: skip
        change_set = create(cfn)
        seen = []
        with pytest.raises(cfn_stack.DeployFailed) as info:
            cfn_stack.execute_change_set(cfn, change_set, on_event=seen.append,
                                         sleep=lambda s: None)  # fmt: skip
        stubber.assert_no_pending_responses()
    failed = info.value
    assert failed.final_status == "UPDATE_ROLLBACK_COMPLETE"
    assert [(e.logical_id, e.reason) for e in failed.failures] == [
        ("ProxyFunction", "Memory size 99999 is above the maximum")
    ]
    text = str(failed)
    assert "previous version is still in place" in text
    assert "ProxyFunction (AWS::Lambda::Function) UPDATE_FAILED: Memory size 99999" in text
    assert failed.exit_code == 3
    # Events stream oldest first, without the ones from before this execution.
    assert [e.status for e in seen][0] == "UPDATE_IN_PROGRESS"
    assert len(seen) == 6


def test_failed_change_set_without_changes_is_no_change():
    cfn = client()
    with Stubber(cfn) as stubber:
        stub_change_set(
            stubber, "FAILED",
            reason="The submitted information didn't contain changes. Submit different "
            "information to create a change set.",
        )  # fmt: skip
        change_set = create(cfn)
    assert change_set.no_changes and change_set.changes == ()


def test_empty_available_change_set_is_no_change():
    cfn = client()
    with Stubber(cfn) as stubber:
        stub_change_set(stubber, "CREATE_COMPLETE", [])
        assert create(cfn).no_changes


def test_any_other_failed_change_set_is_an_aws_error_with_its_reason():
    cfn = client()
    with Stubber(cfn) as stubber:
        stub_change_set(stubber, "FAILED", reason="Template format error: bad thing")
        stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
        with pytest.raises(AwsError, match="Template format error: bad thing"):
            create(cfn)
        stubber.assert_no_pending_responses()


def init_tables(session, ttl=True):
    """What `bedrock-billing init` leaves: the four tables, before any deploy."""
    ddb = session.client("dynamodb")
    cfg = config()
    for name, (pk, sk) in TABLE_KEYS.items():
        keys = [{"AttributeName": pk, "KeyType": "HASH"}]
        attrs = [{"AttributeName": pk, "AttributeType": "S"}]
        if sk:
            keys.append({"AttributeName": sk, "KeyType": "RANGE"})
            attrs.append({"AttributeName": sk, "AttributeType": "S"})
        ddb.create_table(TableName=getattr(cfg.tables, name), KeySchema=keys,
                         AttributeDefinitions=attrs, BillingMode="PAY_PER_REQUEST")  # fmt: skip
    if ttl:
        ddb.update_time_to_live(
            TableName=cfg.tables.tokens,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
        )


def test_tables_made_by_init_are_found_as_they_are(moto_session):
    init_tables(moto_session)
    found = find_adoptees(
        config(), ddb=moto_session.client("dynamodb"), s3=moto_session.client("s3"),
        account_id="123456789012", region="us-east-1", in_stack={},
    )  # fmt: skip
    by_id = {a.logical_id: a for a in found}
    assert set(by_id) == {"CustomersTable", "TokensTable", "UsageTable", "InvoicesTable"}
    tokens = by_id["TokensTable"]
    assert tokens.to_import() == {
        "ResourceType": "AWS::DynamoDB::Table",
        "LogicalResourceId": "TokensTable",
        "ResourceIdentifier": {"TableName": "bedrock-billing-prod-tokens"},
    }
    props = tokens.resource["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    # Not yet enabled by init: the update after the import turns it on.
    assert "PointInTimeRecoverySpecification" not in props
    assert tokens.resource["DeletionPolicy"] == "Retain"
    template = import_template(None, found)
    assert set(template["Resources"]) == set(by_id)


def test_tables_already_in_the_stack_are_not_imported_again(moto_session):
    init_tables(moto_session, ttl=False)
    in_stack = {"CustomersTable": {}, "TokensTable": {}, "UsageTable": {}, "InvoicesTable": {}}
    assert find_adoptees(
        config(), ddb=moto_session.client("dynamodb"), s3=moto_session.client("s3"),
        account_id="123456789012", region="us-east-1", in_stack=in_stack,
    ) == []  # fmt: skip


def test_a_table_with_other_keys_is_refused(moto_session):
    moto_session.client("dynamodb").create_table(
        TableName="bedrock-billing-prod-tokens",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(Conflict, match="cannot be adopted"):
        find_adoptees(
            config(), ddb=moto_session.client("dynamodb"), s3=moto_session.client("s3"),
            account_id="123456789012", region="us-east-1", in_stack={},
        )  # fmt: skip


class _MixedSession:
    """moto for everything but CloudFormation, which moto cannot IMPORT: a stubbed client."""

    def __init__(self, session, cfn):
        self._session, self._cfn = session, cfn
        self.region_name = session.region_name

    def client(self, name, endpoint_url=None):
        return self._cfn if name == "cloudformation" else self._session.client(name)


def test_first_deploy_over_init_tables_asks_cloudformation_to_import_them(moto_session, tmp_path):
    from bedrock_billing.deploy import deployer
    from bedrock_billing.deploy.package import build_zip
    from tests.deploy_fixtures import make_tree

    init_tables(moto_session)
    cfn = client()
    with Stubber(cfn) as stubber:
        stubber.add_client_error(
            "describe_stacks",
            "ValidationError",
            "Stack with id bedrock-billing-prod does not exist",
        )
        expected_imports = [
            {"ResourceType": "AWS::DynamoDB::Table", "LogicalResourceId": f"{n}Table",
             "ResourceIdentifier": {"TableName": f"bedrock-billing-prod-{n.lower()}"}}
            for n in ("Customers", "Tokens", "Usage", "Invoices")
        ]  # fmt: skip
        stubber.add_response(
            "create_change_set",
            {"Id": CS_ID, "StackId": STACK_ID},
            {
                "StackName": "bedrock-billing-prod",
                "ChangeSetName": ANY,
                "ChangeSetType": "IMPORT",
                "Parameters": [],
                "Capabilities": ["CAPABILITY_IAM"],
                "TemplateBody": ANY,
                "ResourcesToImport": expected_imports,
                "Tags": ANY,
            },
        )
        imports = [
            {"Type": "Resource", "ResourceChange": {"Action": "Import", "LogicalResourceId": i[
                "LogicalResourceId"], "ResourceType": "AWS::DynamoDB::Table"}}
            for i in expected_imports
        ]  # fmt: skip
        stubber.add_response(
            "describe_change_set",
            {"ChangeSetId": CS_ID, "StackId": STACK_ID, "Status": "CREATE_COMPLETE",
             "Changes": imports},
            {"ChangeSetName": CS_ID},
        )  # fmt: skip
        # --preview: the import change set and its review stack are dropped again.
        stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ID})
        stubber.add_response("delete_stack", {}, {"StackName": STACK_ID})
        result = deployer.deploy(
            config(), session=_MixedSession(moto_session, cfn), preview=True,
            artifact=build_zip(make_tree(tmp_path)), sleep=lambda s: None,
            config_path=tmp_path / "c.toml",
        )  # fmt: skip
        stubber.assert_no_pending_responses()
    assert result.outcome == "preview"
    assert result.adopted == ["CustomersTable", "TokensTable", "UsageTable", "InvoicesTable"]
    assert {c.action for c in result.changes} == {"Import"}
