"""Customer and token commands through the CLI, against moto in process."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from bedrock_billing.core.tokens import hash_token
from tests.cli_helpers import run, run_json

pytestmark = pytest.mark.usefixtures("moto_aws")


def create(name="Acme Corp", email="billing@acme.example", *extra):
    return run_json("create", "--name", name, "--email", email, *extra)


def all_items():
    client = boto3.client("dynamodb", region_name="us-east-1")
    for table in client.list_tables()["TableNames"]:
        for page in client.get_paginator("scan").paginate(TableName=table):
            yield from page["Items"]


def test_help_lists_every_customer_command():
    out = run("--help").stdout
    for command in (
        "init",
        "create",
        "list",
        "show",
        "update-token",
        "revoke-token",
        "update-limits",
        "suspend",
        "reactivate",
        "update",
    ):
        assert command in out


def test_init_creates_tables_and_is_safe_twice():
    first = run_json("init")["tables"]
    assert {r["status"] for r in first} == {"created"}
    second = run_json("init")["tables"]
    assert {r["status"] for r in second} == {"exists"}
    client = boto3.client("dynamodb", region_name="us-east-1")
    desc = client.describe_table(TableName="bedrock-billing-prod-tokens")["Table"]
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = client.describe_time_to_live(TableName="bedrock-billing-prod-tokens")
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "ttl"


def test_create_prints_id_and_token_and_creates_tables_on_first_use():
    result = run("create", "--name", "Acme", "--email", "a@acme.example", "--output", "json")
    assert "created table bedrock-billing-prod-customers" in result.stderr
    import json

    data = json.loads(result.stdout)
    assert data["customer_id"] and data["token"].startswith("bbk_")
    shown = run_json("show", data["customer_id"])
    assert shown["name"] == "Acme" and shown["tokens"][0]["state"] == "active"


def test_no_table_item_holds_a_token_in_plain_text():
    tokens = [create()["token"]]
    cid = create("Beta", "b@beta.example", "--expires-in", "30d")["customer_id"]
    tokens.append(run_json("update-token", "--customer-id", cid)["token"])
    tokens.append(run_json("update-token", "--customer-id", cid, "--grace-period", "0")["token"])
    dump = repr(list(all_items()))
    for token in tokens:
        assert token not in dump
        assert token[4:20] not in dump  # nor a long piece of it
        assert hash_token(token) in dump  # the hash is the key


def test_supplied_token_is_used_and_weak_ones_refused():
    strong = "Zq8vXr3mN1pLw7tYb5cKe2hJf9gSd4aQuV6xT0iOo"
    data = create("S", "s@s.example", "--token", strong)
    assert data["token"] == strong
    result = run(
        "create", "--name", "W", "--email", "w@w.example", "--token", "password1", expect=2
    )
    assert result.stderr.startswith("Error: token is too weak")
    assert "password1" not in result.stderr
    dup = run("create", "--name", "D", "--email", "d@d.example", "--token", strong, expect=1)
    assert "already in use" in dup.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--email", "not-an-email"], "invalid email"),
        (["--email", "a@b.example", "--expires-in", "soon"], "invalid duration"),
        (["--email", "a@b.example", "--daily-limit", "-3"], "invalid daily limit"),
        (["--email", "a@b.example", "--daily-limit", "many"], "invalid daily limit"),
    ],
)
def test_create_rejects_bad_input_with_one_line(args, message):
    result = run("create", "--name", "X", *args, expect=2)
    assert result.stderr.startswith(f"Error: {message}")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_list_reads_every_page_sorted_and_filtered():
    ids = [create(f"Customer {i:03d}", f"c{i}@x.example")["customer_id"] for i in range(25)]
    listed = run_json("list", "--page-size", "3")
    assert listed["count"] == 25
    assert [c["name"] for c in listed["customers"]] == [f"Customer {i:03d}" for i in range(25)]
    run("suspend", "--customer-id", ids[4])
    suspended = run_json("list", "--status", "suspended", "--page-size", "2")["customers"]
    assert [c["customer_id"] for c in suspended] == [ids[4]]
    assert run_json("list", "--limit", "5")["count"] == 5
    csv_out = run("list", "--output", "csv").stdout.splitlines()
    assert csv_out[0].startswith("customer_id,name,email,status") and len(csv_out) == 26


def test_list_expiring_within():
    soon = create("Soon", "s@x.example", "--expires-in", "7d")["customer_id"]
    create("Later", "l@x.example", "--expires-in", "90d")
    create("Never", "n@x.example")
    rows = run_json("list", "--expiring-within", "14d")["customers"]
    assert [r["customer_id"] for r in rows] == [soon]


def test_rotation_keeps_one_previous_token_in_grace():
    cid = create()["customer_id"]
    first = run_json("update-token", "--customer-id", cid, "--grace-period", "48h")
    assert first["token"].startswith("bbk_") and first["previous_valid_until"]
    states = {t["role"]: t["state"] for t in run_json("show", cid)["tokens"]}
    assert states == {"current": "active", "previous": "grace"}
    run_json("update-token", "--customer-id", cid)
    tokens = run_json("show", cid)["tokens"]
    assert len(tokens) == 2  # the first rotation's old token ended; only one previous is kept


def test_revoke_previous_only_then_all():
    cid = create()["customer_id"]
    run_json("update-token", "--customer-id", cid)
    revoked = run_json("revoke-token", "--customer-id", cid, "--previous-only")
    assert len(revoked["revoked"]) == 1
    again = run("revoke-token", "--customer-id", cid, "--previous-only", expect=1)
    assert "no previous token" in again.stderr
    run_json("revoke-token", "--customer-id", cid)
    assert run_json("show", cid)["tokens"] == []
    fresh = run_json("update-token", "--customer-id", cid)
    assert fresh["previous_token_prefix"] is None


def test_suspend_reactivate_and_update():
    cid = create()["customer_id"]
    assert run_json("suspend", "--customer-id", cid)["status"] == "suspended"
    assert run_json("reactivate", "--customer-id", cid)["status"] == "active"
    updated = run_json(
        "update", "--customer-id", cid, "--name", "Acme Ltd", "--email", "x@y.example"
    )
    assert (updated["name"], updated["email"]) == ("Acme Ltd", "x@y.example")
    run("update", "--customer-id", cid, "--email", "nope", expect=2)
    run("update", "--customer-id", cid, expect=2)


def test_update_limits_sets_and_clears():
    cid = create()["customer_id"]
    limits = run_json(
        "update-limits",
        "--customer-id",
        cid,
        "--daily-limit",
        "1000",
        "--monthly-token-limit",
        "5000000",
        "--requests-per-minute",
        "60",
        "--monthly-budget",
        "250",
        "--allowed-models",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "--allowed-models",
        "us.amazon.nova-lite-v1:0",
    )["limits"]
    assert limits == {
        "daily_request_limit": 1000,
        "monthly_token_limit": 5000000,
        "requests_per_minute": 60,
        "monthly_budget": "250.00",
        "allowed_models": ["amazon.nova-lite-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"],
        "allowed_cidrs": None,
        "allowed_origins": None,
    }
    cleared = run_json(
        "update-limits",
        "--customer-id",
        cid,
        "--daily-limit",
        "unlimited",
        "--allowed-models",
        "all",
    )["limits"]
    assert cleared["daily_request_limit"] is None and cleared["allowed_models"] is None
    assert cleared["monthly_token_limit"] == 5000000
    run("update-limits", "--customer-id", cid, "--monthly-budget", "1.234", expect=2)
    run("update-limits", "--customer-id", cid, expect=2)
    origins = run_json(
        "update-limits", "--customer-id", cid, "--allowed-origins", "https://app.acme.example"
    )["limits"]["allowed_origins"]
    assert origins == ["https://app.acme.example"]
    bad = run("update-limits", "--customer-id", cid, "--allowed-origins", "*", expect=2)
    assert bad.stderr.startswith("Error: invalid origin")


def test_update_model_parameters_sets_shows_and_refuses_bad_values():
    cid = create()["customer_id"]
    params = run_json(
        "update-model-parameters", "--customer-id", cid[:8], "--max-tokens-cap", "2000",
        "--on-cap", "clamp", "--temperature", "0.3", "--guardrail", "gr1:DRAFT",
    )["model_parameters"]  # fmt: skip
    assert params == {
        "max_tokens_cap": 2000, "on_cap": "clamp", "temperature": "0.3",
        "guardrail_id": "gr1", "guardrail_version": "DRAFT",
    }  # fmt: skip
    assert run_json("show", cid)["model_parameters"] == params
    table = run("update-model-parameters", "--customer-id", cid, "--max-tokens", "500").stdout
    assert "Model parameters" in table and "max_tokens=500" in table  # not a dict's repr
    assert "{'" not in table
    for bad in (["--temperature", "2"], ["--on-cap", "ignore"], ["--max-tokens", "5000"], []):
        result = run("update-model-parameters", "--customer-id", cid, *bad, expect=2)
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "option, value",
    [
        ("--monthly-budget", "1e400"),
        ("--monthly-budget", "10000000000000"),
        ("--daily-limit", "1" + "0" * 40),
        ("--monthly-token-limit", "1" + "0" * 40),
    ],
)
def test_a_limit_beyond_what_dynamodb_can_hold_is_a_usage_error(option, value):
    # A DynamoDB number holds 38 digits. The budget, stored as text, reaches the proxy's
    # admission condition in pico-units: 1e400 was accepted here, then every request of the
    # customer would fail in DynamoDB (503) instead of being admitted or refused.
    cid = create()["customer_id"]
    result = run("update-limits", "--customer-id", cid, option, value, expect=2)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def test_unknown_customer_is_a_domain_error():
    run_json("init")
    missing = "00000000-0000-4000-8000-000000000000"
    for args in (
        ["show", missing],
        ["update-token", "--customer-id", missing],
        ["revoke-token", "--customer-id", missing],
        ["suspend", "--customer-id", missing],
        ["update-limits", "--customer-id", missing, "--daily-limit", "5"],
    ):
        result = run(*args, expect=1)
        assert result.stderr == f"Error: no customer with id {missing}\n"


def test_global_options_work_before_and_after_the_command():
    create()
    before = run("--output", "json", "--stage", "prod", "list").stdout
    after = run("list", "--output", "json", "--stage", "prod").stdout
    mixed = run("--stage", "prod", "list", "-o", "json").stdout
    assert before == after == mixed
    other = run("list", "--stage", "staging", expect=3)
    assert "bedrock-billing-staging-customers" in other.stderr


def test_missing_table_on_read_is_one_error_line():
    result = run("list", expect=3)
    assert result.stderr.startswith("Error: a table of this installation does not exist")
    assert "Traceback" not in result.stderr


def test_a_token_appears_only_in_the_output_that_shows_it_once():
    created = run("create", "--name", "A", "--email", "a@a.example", "-o", "json")
    token = json.loads(created.stdout)["token"]
    assert token not in created.stderr
    cid = json.loads(created.stdout)["customer_id"]
    rotated = run("update-token", "--customer-id", cid)
    new_token = next(w for w in rotated.stdout.split() if w.startswith("bbk_") and "…" not in w)
    for args in (["list"], ["show", cid], ["list", "-o", "json"], ["show", cid, "-o", "csv"],
                 ["revoke-token", "--customer-id", cid, "--previous-only"]):  # fmt: skip
        out = run(*args)
        for secret in (token, new_token):
            assert secret not in out.stdout + out.stderr


def test_a_plan_must_exist_in_the_price_book():
    book = str(Path(__file__).parent / "data" / "pricebook.toml")
    bad = run("create", "--name", "A", "--email", "a@a.example", "--plan", "nosuch", expect=2)
    assert bad.stderr.startswith("Error: unknown plan 'nosuch'") and "list" in bad.stderr
    made = run_json("create", "--name", "A", "--email", "a@a.example", "--plan", "pro",
                    "--price-book", book)  # fmt: skip
    assert made["plan"] == "pro"
    run("update", "--customer-id", made["customer_id"], "--plan", "tiered", expect=2)
    later = run_json("update", "--customer-id", made["customer_id"], "--plan", "tiered",
                     "--price-book", book)  # fmt: skip
    assert later["plan"] == "pro"  # the change applies from the next period
