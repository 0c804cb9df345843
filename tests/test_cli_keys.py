"""The ``keys`` group and ``usage --group-by key`` through the CLI, against moto in process."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.cli_helpers import run, run_json

pytestmark = pytest.mark.usefixtures("moto_aws")


def customer() -> str:
    return run_json(
        "create", "--name", "Acme", "--email", "ops@acme.example", "--daily-limit", "50"
    )


def test_keys_create_list_rotate_revoke_and_the_token_is_shown_once():
    created = customer()
    cid = created["customer_id"]
    ci = run_json("keys", "create", "--customer-id", cid, "--name", "ci", "--daily-limit", "10",
                  "--expires-in", "90d", "--allowed-cidrs", "10.0.0.0/8")  # fmt: skip
    assert ci["key_id"].startswith("key_") and ci["token"].startswith("bbk_")
    assert ci["daily_request_limit"] == 10 and ci["allowed_cidrs"] == ["10.0.0.0/8"]
    assert ci["expires_at"]
    test = run_json("keys", "create", "--customer-id", cid, "--name", "sandbox", "--test")
    assert test["token"].startswith("bbk_test_") and test["test"] is True

    listed = run("keys", "list", "--customer-id", cid, "--output", "json").stdout
    rows = json.loads(listed)["keys"]
    assert [r["name"] for r in rows] == ["default", "ci", "sandbox"]
    for secret in (created["token"], ci["token"], test["token"]):
        assert secret not in listed
    table = run("keys", "list", "--customer-id", cid).stdout
    assert "ci" in table and ci["token"] not in table
    csv = run("keys", "list", "--customer-id", cid, "--output", "csv").stdout
    assert csv.splitlines()[0].startswith("key_id,name,test,state")

    rotated = run_json("keys", "rotate", ci["key_id"], "--customer-id", cid, "--grace-period", "1h")
    assert rotated["key_id"] == ci["key_id"] and rotated["token"] != ci["token"]
    assert rotated["previous_token_prefix"] == ci["token_prefix"]
    revoked = run_json("keys", "revoke", ci["key_id"], "--customer-id", cid)
    assert revoked["key_id"] == ci["key_id"]
    states = {r["name"]: r["state"] for r in run_json("keys", "list", "--customer-id", cid)["keys"]}
    assert states == {"default": "active", "ci": "revoked", "sandbox": "active"}
    again = run(
        "keys", "revoke", ci["key_id"], "--customer-id", cid, "--output", "json", expect=None
    )
    assert again.exit_code != 0 and again.stderr.startswith("Error: ")

    # The default key is the customer's own token: rotating it is update-token.
    default = run_json("keys", "rotate", "default", "--customer-id", cid, "--grace-period", "0s")
    assert default["token"] != created["token"]
    shown = run_json("show", cid)
    assert shown["tokens"][0]["prefix"] == default["token_prefix"]


def test_bad_input_is_one_error_line_and_nothing_is_written():
    cid = customer()["customer_id"]
    for args in (
        ["--name", "bad name"],
        ["--name", "wide", "--daily-limit", "51"],  # above the customer's 50
        ["--name", "x", "--allowed-cidrs", "10.0.0.1/8"],
        ["--name", "x", "--expires-in", "soon"],
    ):
        result = run("keys", "create", "--customer-id", cid, *args, expect=None)
        assert result.exit_code != 0, args
        assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
    assert [r["name"] for r in run_json("keys", "list", "--customer-id", cid)["keys"]] == [
        "default"
    ]
    missing = run("keys", "revoke", "key_0123456789abcdef", "--customer-id", cid, expect=None)
    assert missing.exit_code != 0 and "no key" in missing.stderr


def test_usage_group_by_key_and_migrate_dry_run():
    cid = customer()["customer_id"]
    ci = run_json("keys", "create", "--customer-id", cid, "--name", "ci")
    client = boto3.client("dynamodb", region_name="us-east-1")
    table = next(t for t in client.list_tables()["TableNames"] if t.endswith("-usage"))
    client.put_item(
        TableName=table,
        Item={
            "customer_id": {"S": cid},
            "sk": {"S": f"KEY#{ci['key_id']}#2026-01-05"},
            "requests": {"N": "7"},
            "input_tokens": {"N": "70"},
            "test_requests": {"N": "2"},
        },
    )
    report = run_json("usage", "--customer-id", cid, "--group-by", "key", "--period", "2026-01")
    assert report["rows"] == [
        {
            "customer_id": cid, "key_name": "ci", "key_id": ci["key_id"], "day": "2026-01-05",
            "requests": 7, "input_tokens": 70, "output_tokens": 0, "cache_read_input_tokens": 0,
            "cache_write_input_tokens": 0, "errors": 0, "admitted": 0, "test_requests": 2,
        }
    ]  # fmt: skip
    no_customer = run("usage", "--group-by", "key", expect=None)
    assert no_customer.exit_code != 0 and "--customer-id" in no_customer.stderr
    bad_source = run(
        "usage", "--customer-id", cid, "--group-by", "key", "--source", "csv", expect=None
    )
    assert bad_source.exit_code == 2 and "--source" in bad_source.stderr
    assert len(bad_source.stderr.strip().splitlines()) == 1

    dry = run_json("keys", "migrate", "--dry-run")
    assert dry == {"dry_run": True, "migrated": 0, "tokens": []}  # new tokens have their key
