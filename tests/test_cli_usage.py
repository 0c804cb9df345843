"""`usage` and `reconcile` through the CLI over moto: counters and the log (local engine,
chosen by the sandbox marker in a bucket named as a deployment names it)."""

from __future__ import annotations

import json

import boto3
import pytest

from bedrock_billing.core.schema import day_key, log_bucket_name
from bedrock_billing.stores.logsink import write_sandbox_marker
from tests.cli_helpers import run, run_json
from tests.usage_helpers import generate, seed_dynamodb, write_s3_log

BUCKET = log_bucket_name("test", "bedrock-billing", "123456789012", "us-east-1")


@pytest.fixture
def seeded(moto_aws):
    gen = generate(customers=3)
    seed_dynamodb(gen, boto3.client("dynamodb", region_name="us-east-1"))
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    write_sandbox_marker(s3, BUCKET, log_prefix="logs/")
    write_s3_log(gen, s3, BUCKET)
    return gen


def usage(*args, expect=0):
    return run_json("usage", "--stage", "test", *args, expect=expect)


def test_counters_and_log_give_the_same_report(seeded):
    counters = usage("--all", "--period", "2026-10")
    log = usage("--all", "--period", "2026-10", "--source", "athena")
    assert counters["source"] == "dynamodb" and log["source"] == "local"
    assert counters["totals"] == log["totals"]
    assert counters["rows"] == log["rows"]
    assert counters["totals"]["requests"] > 0
    assert len(counters["daily"]) == 31
    # a customer with no usage at all is listed with zeros
    idle = [c for c in counters["customers"] if c["customer_id"] == seeded.idle_customer]
    assert idle and idle[0]["requests"] == 0


def test_one_customer_grouped_by_model_and_none(seeded):
    cid = seeded.customers[0]
    expected = seeded.expected_rows(cid, *_month(2026, 9))
    by_model = usage("--customer-id", cid, "--period", "2026-09", "--group-by", "model")
    assert {r["model"] for r in by_model["rows"]} == {r.model for r in expected}
    assert all(r["day"] is None for r in by_model["rows"])
    none = usage("--customer-id", cid, "--start-date", "2026-09-01", "--end-date", "2026-09-30",
                 "--group-by", "none")  # fmt: skip
    assert none["rows"][0]["requests"] == sum(r.requests for r in expected)


def test_table_output_has_rows_totals_and_a_chart(seeded):
    out = run("usage", "--all", "--period", "2026-10", "--stage", "test").stdout
    assert "Totals" in out and "Requests per day (UTC)" in out and "█" in out


def test_csv_prints_rows_only(seeded):
    lines = run("usage", "--all", "--period", "2026-10", "--stage", "test", "-o", "csv").stdout
    header = lines.splitlines()[0]
    assert header.startswith("customer_id,day,model,requests,input_tokens,output_tokens")


@pytest.mark.parametrize(
    "args",
    [
        ["--customer-id", "x' OR '1'='1"],
        ["--all", "--period", "2026-13"],
        ["--all", "--start-date", "2026-10-05", "--end-date", "2026-10-01"],
        ["--all", "--period", "2026-10", "--start-date", "2026-10-01"],
        ["--all", "--group-by", "week"],
        ["--all", "--source", "cloudwatch"],
        [],
    ],
)
def test_bad_input_is_a_usage_error(seeded, args):
    result = run("usage", "--stage", "test", *args, expect=2)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def test_reconcile_is_clean_then_finds_a_planted_difference(seeded):
    clean = run("reconcile", "--period", "2026-10", "--stage", "test", "-o", "json", expect=0)
    assert json.loads(clean.stdout)["totals"]["differences"] == 0
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    cid = seeded.customers[1]
    (day, model), _ = next((k, v) for k, v in seeded.expected[cid].items() if k[0].month == 10)
    ddb.update_item(
        TableName="bedrock-billing-test-usage",
        Key={"customer_id": {"S": cid}, "sk": {"S": day_key(day, model)}},
        UpdateExpression="ADD requests :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    dirty = run("reconcile", "--period", "2026-10", "--stage", "test", "-o", "json", expect=5)
    rows = json.loads(dirty.stdout)["rows"]
    assert [(r["customer_id"], r["day"], r["model"], r["counter"]) for r in rows] == [
        (cid, day.isoformat(), model, "requests")
    ]


def test_reconcile_table_and_csv_show_both_values_of_a_difference(seeded):
    # The columns named keys the rows do not have (`counters`, `log`): the table and the CSV
    # showed the difference with both values blank.
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    cid = seeded.customers[1]
    (day, model), counts = next((k, v) for k, v in seeded.expected[cid].items() if k[0].month == 10)
    ddb.update_item(
        TableName="bedrock-billing-test-usage",
        Key={"customer_id": {"S": cid}, "sk": {"S": day_key(day, model)}},
        UpdateExpression="ADD requests :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    logged = counts["requests"]
    csv_out = run("reconcile", "--period", "2026-10", "--stage", "test", "-o", "csv", expect=5)
    header, row = csv_out.stdout.splitlines()
    assert header == "customer_id,day,model,counter,counters_value,log_value,difference"
    assert row.endswith(f",requests,{logged + 1},{logged},1")
    table = run("reconcile", "--period", "2026-10", "--stage", "test", expect=5).stdout
    line = next(x for x in table.splitlines() if "requests" in x)
    assert [c.strip() for c in line.split("│")[-4:-1]] == [str(logged + 1), str(logged), "1"]


def test_usage_csv_has_the_json_rows_columns_in_order(seeded):
    # docs/usage.md: "--output csv prints the rows only, with the columns of a row in that
    # order"; total_tokens was left out.
    data = usage("--all", "--period", "2026-10")
    out = run("usage", "--all", "--period", "2026-10", "--stage", "test", "-o", "csv").stdout
    header = out.splitlines()[0].split(",")
    assert header == list(data["rows"][0])


def _month(year, month):
    from bedrock_billing.core.timeutil import Period

    p = Period(year, month)
    return p.first_day, p.last_day
