"""The audit trail over moto: a history made by every state-changing command verifies; a
deleted or edited record (or a deleted newest one) is named by ``audit verify``; records
carry who, what, before and after, and never a secret."""

from __future__ import annotations

import csv
import io
import json

import boto3
import pytest

from bedrock_billing.core.audit import scrub_argv
from tests.cli_helpers import run, run_json
from tests.test_cli_invoice import BOOK, _seed

pytestmark = pytest.mark.usefixtures("moto_aws")


def audit_items(client, table):
    items = client.query(
        TableName=table,
        KeyConditionExpression="customer_id = :p",
        ExpressionAttributeValues={":p": {"S": "AUDIT"}},
    )["Items"]
    return sorted(items, key=lambda i: i["sk"]["S"])


@pytest.fixture
def history():
    """Every state-changing command once, through the CLI."""
    settings, ids = _seed()
    stage = ["--stage", "test"]
    cid = ids[1]
    created = run_json("create", "--name", "Zed", "--email", "z@x.example", *stage)
    zid = created["customer_id"]
    secrets = [created["token"]]
    run_json("update", "--customer-id", zid, "--name", "Zed Ltd", *stage)
    run_json("update-limits", "--customer-id", zid, "--daily-limit", "100",
             "--allowed-cidrs", "10.0.0.0/8", *stage)  # fmt: skip
    run_json("suspend", "--customer-id", zid, *stage)
    run_json("reactivate", "--customer-id", zid, *stage)
    supplied = "Qm9vbGVhbkZvcmNlQ2FuTm90R3Vlc3NUaGlzMTIzNDU2Nzg5MA"
    secrets.append(supplied)
    secrets.append(
        run_json("update-token", "--customer-id", zid, "--token", supplied, *stage)["token"]
    )
    key = run_json("keys", "create", "--customer-id", zid, "--name", "ci", *stage)
    secrets.append(key["token"])
    secrets.append(run_json("keys", "rotate", key["key_id"], "--customer-id", zid, *stage)["token"])
    run_json("keys", "revoke", key["key_id"], "--customer-id", zid, *stage)
    run_json("revoke-token", "--customer-id", zid, *stage)
    run_json("credits", "add", "--customer-id", cid, "--amount", "1.00",
             "--effective", "2026-01-01", *stage)  # fmt: skip
    args = ["--customer-id", cid, "--period", "2026-10", *stage]
    run_json("invoice", *args, "--price-book", BOOK, "--finalize")
    run_json("void-invoice", *args, "--reason", "wrong plan")
    return settings, zid, secrets


def test_every_command_appends_a_record_and_the_chain_verifies(history):
    settings, zid, secrets = history
    report = run_json("audit", "verify", "--stage", "test")
    assert report["ok"] is True and report["problems"] == []
    records = run_json("audit", "--stage", "test")["records"]
    actions = [r["action"] for r in records]
    for action in ("customer.create", "customer.update", "limits.update", "customer.suspend",
                   "customer.reactivate", "token.rotate", "key.create", "key.rotate",
                   "key.revoke", "token.revoke", "credits.add", "invoice.finalize",
                   "invoice.void"):  # fmt: skip
        assert action in actions, action
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    limits = next(r for r in records if r["action"] == "limits.update")
    assert limits["before"]["daily_request_limit"] is None
    assert limits["after"]["daily_request_limit"] == 100
    assert limits["after"]["allowed_cidrs"] == ["10.0.0.0/8"]
    assert limits["who"].startswith("arn:aws:") and limits["customer"] == zid
    assert "--daily-limit 100" in limits["command"]
    rotate = next(r for r in records if r["action"] == "token.rotate")
    assert "--token ***" in rotate["command"]
    # No secret anywhere in the stored records, whatever the field.
    client = boto3.client("dynamodb", region_name="us-east-1")
    stored = json.dumps(audit_items(client, settings.tables.invoices))
    for secret in secrets:
        assert secret not in stored
    assert "token_hash" not in stored

    mine = run_json("audit", "--customer-id", zid, "--action", "key.", "--stage", "test")
    assert [r["action"] for r in mine["records"]] == ["key.create", "key.rotate", "key.revoke"]
    assert run_json("audit", "--since", "2999-01-01", "--stage", "test")["records"] == []
    table = run("audit", "--action", "key.", "--stage", "test").stdout
    assert "key.rotate" in table
    rows = list(csv.DictReader(io.StringIO(run("audit", "-o", "csv", "--stage", "test").stdout)))
    assert len(rows) == len(records) and rows[0]["hash"]


def test_an_edited_record_is_named(history):
    settings, _, _ = history
    client = boto3.client("dynamodb", region_name="us-east-1")
    third = audit_items(client, settings.tables.invoices)[2]
    client.update_item(
        TableName=settings.tables.invoices,
        Key={"customer_id": third["customer_id"], "sk": third["sk"]},
        UpdateExpression="SET #w = :w",
        ExpressionAttributeNames={"#w": "who"},
        ExpressionAttributeValues={":w": {"S": "arn:aws:iam::123456789012:user/someone-else"}},
    )
    result = run("audit", "verify", "--stage", "test", "-o", "json", expect=1)
    assert json.loads(result.stdout)["ok"] is False
    assert "record 3 was edited" in result.stderr


def test_a_deleted_record_is_named_and_so_is_a_deleted_newest_one(history):
    settings, _, _ = history
    client = boto3.client("dynamodb", region_name="us-east-1")
    items = audit_items(client, settings.tables.invoices)
    for victim in (items[4], items[-1]):
        client.delete_item(
            TableName=settings.tables.invoices,
            Key={"customer_id": victim["customer_id"], "sk": victim["sk"]},
        )
    result = run("audit", "verify", "--stage", "test", expect=1)
    assert "record 5 is missing" in result.stderr
    assert f"record {len(items)} is missing" in result.stderr


def test_secret_options_are_hidden_in_the_command_line():
    argv = ["bedrock-billing", "create", "--token", "s3cret", "--token=abc", "--name", "bbk_x"]
    assert scrub_argv(argv) == "bedrock-billing create --token *** --token=*** --name ***"
