"""deploy, status and destroy against moto (in process)."""

from __future__ import annotations

import tomllib

import pytest

from bedrock_billing.core.errors import NotFound
from bedrock_billing.deploy import deployer
from bedrock_billing.deploy.package import build_zip
from tests.deploy_fixtures import config, make_tree, moto_cfn_outputs  # noqa: F401

REGION = "us-east-1"


def no_sleep(_seconds):
    return None


@pytest.fixture
def aws(moto_cfn_outputs, moto_session):  # noqa: F811
    return moto_session


@pytest.fixture
def artifact(tmp_path_factory):
    return build_zip(make_tree(tmp_path_factory.mktemp("pkg")))


@pytest.fixture
def calls(aws):
    """Names of the CloudFormation operations the code makes."""
    seen: list[str] = []
    aws.events.register("before-call.cloudformation.*", lambda model, **kw: seen.append(model.name))
    return seen


def run(aws, artifact, tmp_path, cfg=None, **kwargs):
    kwargs.setdefault("config_path", tmp_path / "config.toml")
    return deployer.deploy(
        cfg or config(), session=aws, artifact=artifact, sleep=no_sleep, **kwargs
    )


def test_deploy_creates_the_stack_prints_outputs_and_writes_the_config(aws, artifact, tmp_path):
    events = []
    result = run(aws, artifact, tmp_path, on_event=events.append)
    assert result.outcome == "created"
    assert result.outputs["ApiUrl"].endswith("/prod/bedrock")
    assert result.outputs["AthenaWorkGroup"] == "bedrock-billing-prod"
    assert result.outputs["LogBucket"] == "bedrock-billing-prod-logs-123456789012-us-east-1"
    assert any(e.status == "CREATE_COMPLETE" for e in events)
    tables = aws.client("dynamodb").list_tables()["TableNames"]
    assert "bedrock-billing-prod-tokens" in tables
    written = tomllib.loads((tmp_path / "config.toml").read_text())["prod"]
    assert written == {
        "region": REGION,
        "table_prefix": "bedrock-billing",
        "stack_name": "bedrock-billing-prod",
        "api_url": result.outputs["ApiUrl"],
        "athena_workgroup": "bedrock-billing-prod",
        "athena_database": "bedrock_billing_prod",
        "athena_table": "usage_log",
        "athena_output_location": result.outputs["AthenaOutputLocation"],
        "log_bucket": result.outputs["LogBucket"],
        "log_prefix": "logs/",
        "deploy_models": "anthropic.claude-3-haiku-20240307-v1:0",
        "alerts_topic_arn": f"arn:aws:sns:{REGION}:123456789012:bedrock-billing-prod-alerts",
        "webhook_key": "alias/bedrock-billing-prod-webhooks",
        "invocation_logs": "off",
    }


def test_unchanged_second_deploy_executes_nothing(aws, artifact, tmp_path, calls):
    run(aws, artifact, tmp_path)
    calls.clear()
    asked = []
    result = run(aws, artifact, tmp_path, confirm=lambda changes: asked.append(changes) or True)
    assert result.outcome == "unchanged"
    assert result.code_uploaded is False
    assert "ExecuteChangeSet" not in calls
    assert asked == []  # nothing to confirm
    assert result.outputs["ApiUrl"]


def test_changed_setting_shows_as_a_modification_in_the_preview(aws, artifact, tmp_path, calls):
    run(aws, artifact, tmp_path)
    calls.clear()
    result = run(aws, artifact, tmp_path, cfg=config(memory_mb=1024), dry_run=True)
    assert result.outcome == "dry-run"
    assert [(c.action, c.logical_id) for c in result.changes] == [("Modify", "ProxyFunction")]
    assert "ExecuteChangeSet" not in calls
    fn = aws.client("lambda").get_function(FunctionName="bedrock-billing-prod-proxy")
    assert fn["Configuration"]["MemorySize"] == 512


def test_declining_the_confirmation_changes_nothing(aws, artifact, tmp_path, calls):
    run(aws, artifact, tmp_path)
    calls.clear()
    shown = []
    result = run(
        aws, artifact, tmp_path, cfg=config(memory_mb=1024),
        confirm=lambda changes: shown.extend(changes) or False,
    )  # fmt: skip
    assert result.outcome == "cancelled"
    assert [c.logical_id for c in shown] == ["ProxyFunction"]
    assert "ExecuteChangeSet" not in calls


def test_dry_run_of_a_new_stack_leaves_no_stack_behind(aws, artifact, tmp_path):
    result = run(aws, artifact, tmp_path, dry_run=True)
    assert result.outcome == "dry-run"
    assert {c.action for c in result.changes} == {"Add"}
    assert "ProxyFunction" in {c.logical_id for c in result.changes}
    assert deployer.stack_status("bedrock-billing-prod", session=aws).exists is False
    assert not (tmp_path / "config.toml").exists()


def test_status_shows_the_stack_and_its_outputs(aws, artifact, tmp_path):
    missing = deployer.stack_status("bedrock-billing-prod", session=aws)
    assert missing.exists is False
    run(aws, artifact, tmp_path)
    status = deployer.stack_status("bedrock-billing-prod", session=aws)
    assert status.status == "CREATE_COMPLETE"
    assert status.outputs["AthenaDatabase"] == "bedrock_billing_prod"
    assert any(r["logical_id"] == "ProxyFunction" for r in status.resources)
    assert deployer.read_outputs("bedrock-billing-prod", session=aws) == status.outputs


def test_destroy_keeps_tables_and_bucket_unless_asked(aws, artifact, tmp_path):
    run(aws, artifact, tmp_path)
    plans = []
    result = deployer.destroy(
        "bedrock-billing-prod", session=aws, confirm=lambda p: plans.append(p) or True,
        sleep=no_sleep,
    )  # fmt: skip
    assert result.outcome == "deleted"
    assert "bedrock-billing-prod-usage" in plans[0].kept
    assert "bedrock-billing-prod-usage" in aws.client("dynamodb").list_tables()["TableNames"]
    buckets = [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]
    assert "bedrock-billing-prod-logs-123456789012-us-east-1" in buckets
    assert deployer.stack_status("bedrock-billing-prod", session=aws).exists is False


def test_destroy_with_delete_data_removes_tables_and_versioned_bucket(aws, artifact, tmp_path):
    run(aws, artifact, tmp_path)
    s3 = aws.client("s3")
    bucket = "bedrock-billing-prod-logs-123456789012-us-east-1"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="logs/dt=2025-01-01/a.jsonl", Body=b"{}\n")
    s3.put_object(Bucket=bucket, Key="logs/dt=2025-01-01/a.jsonl", Body=b"{}\n{}\n")
    result = deployer.destroy("bedrock-billing-prod", session=aws, delete_data=True, sleep=no_sleep)
    assert bucket in result.data_deleted
    assert not aws.client("dynamodb").list_tables()["TableNames"]
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_declined_destroy_keeps_the_stack(aws, artifact, tmp_path):
    run(aws, artifact, tmp_path)
    result = deployer.destroy("bedrock-billing-prod", session=aws, confirm=lambda p: False)
    assert result.outcome == "cancelled"
    assert deployer.stack_status("bedrock-billing-prod", session=aws).exists


def test_destroy_of_a_missing_stack_is_not_found(aws):
    with pytest.raises(NotFound):
        deployer.destroy("nope", session=aws, sleep=no_sleep)
