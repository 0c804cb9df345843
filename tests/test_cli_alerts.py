"""`alerts` and `webhooks` through the CLI, against moto in process."""

from __future__ import annotations

import boto3
import pytest

from bedrock_billing.core import alerts
from tests.cli_helpers import run, run_json

pytestmark = pytest.mark.usefixtures("moto_aws")


@pytest.fixture
def customer():
    kms = boto3.client("kms", region_name="us-east-1")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alerts.webhook_key_alias("bedrock-billing-prod"), TargetKeyId=key)
    run("init")
    return run_json(
        "create", "--name", "Acme", "--email", "ops@acme.example", "--daily-limit", "10"
    )["customer_id"]


def all_items():
    client = boto3.client("dynamodb", region_name="us-east-1")
    for table in client.list_tables()["TableNames"]:
        for page in client.get_paginator("scan").paginate(TableName=table):
            yield from page["Items"]


def test_alerts_set_list_clear(customer):
    got = run_json(
        "alerts", "set", "--customer-id", customer, "--threshold", "90", "--threshold", "25%"
    )
    assert got == {
        "customer_id": customer,
        "thresholds": [25, 90],
        "source": "customer",
        "credits_below": None,
        "webhook_url": None,
    }
    listed = run_json("alerts", "list")
    assert listed["alerts"][0]["thresholds"] == [25, 90]
    assert listed["default_thresholds"] == [50, 80, 100]
    cleared = run_json("alerts", "clear", "--customer-id", customer)
    assert (cleared["thresholds"], cleared["source"]) == ([50, 80, 100], "default")


def test_default_thresholds_come_from_the_configuration(customer, monkeypatch):
    monkeypatch.setenv("BEDROCK_BILLING_ALERT_THRESHOLDS", "70,95")
    one = run_json("alerts", "list", "--customer-id", customer)
    assert one["alerts"][0]["thresholds"] == [70, 95] and one["default_thresholds"] == [70, 95]


@pytest.mark.parametrize("value", ["0", "101", "abc", "12.5"])
def test_a_bad_threshold_is_one_error_line_and_exit_2(customer, value):
    result = run("alerts", "set", "--customer-id", customer, "--threshold", value, expect=2)
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1


def test_webhook_secret_is_shown_once_and_stored_encrypted(customer):
    got = run_json(
        "webhooks", "set", "--customer-id", customer, "--url", "https://hooks.example.com/x"
    )
    secret = got["signing_secret"]
    assert secret.startswith("whsec_") and got["url"] == "https://hooks.example.com/x"
    stored = repr(list(all_items()))
    assert secret not in stored and secret[6:] not in stored
    assert "hooks.example.com" in stored
    listed = run("alerts", "list", "--customer-id", customer)
    assert secret not in listed.stdout + listed.stderr


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",  # not https
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://localhost/x",
        "ftp://hooks.example.com/x",
    ],
)
def test_webhook_urls_that_are_refused(customer, url):
    result = run("webhooks", "set", "--customer-id", customer, "--url", url, expect=2)
    assert result.stderr.startswith("Error: webhook url")
    assert "signing_secret" not in result.stdout


def test_allow_private_url_allows_a_loopback_http_receiver(customer):
    got = run_json(
        "webhooks",
        "set",
        "--customer-id",
        customer,
        "--url",
        "http://127.0.0.1:9/x",
        "--allow-private-url",
    )
    assert got["url"] == "http://127.0.0.1:9/x"


def test_deliveries_and_redeliver_of_an_unknown_event(customer):
    assert run_json("webhooks", "deliveries", "--failed") == {"deliveries": [], "count": 0}
    result = run("webhooks", "redeliver", "evt_" + "0" * 32, expect=1)
    assert result.stderr.startswith("Error: no event")
    assert run("webhooks", "redeliver", "nope", expect=2).stderr.startswith("Error: ")


def test_webhooks_for_an_unknown_customer(customer):
    result = run(
        "webhooks",
        "set",
        "--customer-id",
        "00000000-0000-4000-8000-000000000000",
        "--url",
        "https://hooks.example.com/x",
        expect=1,
    )
    assert result.stderr.startswith("Error: no customer")


def put_day(customer_id: str, day, requests: int, tokens: int, model: str = "m.x-v1:0"):
    from bedrock_billing.core.schema import TableNames, day_key

    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName=TableNames.for_stage("prod").usage,
        Item={
            "customer_id": {"S": customer_id},
            "sk": {"S": day_key(day, model)},
            "requests": {"N": str(requests)},
            "input_tokens": {"N": str(tokens // 2)},
            "output_tokens": {"N": str(tokens - tokens // 2)},
        },
    )


def test_anomalies_exit_5_and_send_events_only_when_a_day_is_far_from_baseline(
    customer, monkeypatch
):
    import json
    from datetime import date, timedelta

    sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", "us-east-1")
    topic = sns.create_topic(Name="ops")["TopicArn"]
    queue = sqs.create_queue(QueueName="ops")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    monkeypatch.setenv("BEDROCK_BILLING_ALERTS_TOPIC_ARN", topic)
    start = date(2026, 11, 1)
    for n in range(15):
        put_day(customer, start + timedelta(days=n), 100, 50_000)
    quiet = run_json("anomalies", "--day", "2026-11-15", "--notify")
    assert quiet["count"] == 0 and quiet["customers_checked"] == 1
    put_day(customer, start + timedelta(days=15), 900, 600_000)
    result = run("anomalies", "--day", "2026-11-16", "--notify", "-o", "json", expect=5)
    found = json.loads(result.stdout)
    assert [(a["kind"], a["metric"]) for a in found["anomalies"]] == [
        ("usage_spike", "tokens"),
        ("usage_spike", "requests"),
    ]
    assert found["events_sent"] == 2
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    events = [json.loads(m["Body"]) for m in messages]
    assert {e["type"] for e in events} == {"anomaly.detected"}
    assert {e["customer_id"] for e in events} == {customer}
    kept = run_json("webhooks", "deliveries", "--customer-id", customer)["deliveries"]
    assert [(d["type"], d["status"]) for d in kept] == [("anomaly.detected", "no_webhook")] * 2
    assert run("anomalies", "--window", "3", expect=2).stderr.startswith("Error: --window")
    month = run("anomalies", "--period", "2026-11", "-o", "json", expect=5)
    whole = json.loads(month.stdout)
    assert whole["first_date"] == "2026-11-01" and whole["date"] == "2026-11-30"
    assert {a["date"] for a in whole["anomalies"]} == {"2026-11-16"}


def test_daily_run_sends_token_expiring_once_per_token(customer):
    soon = run_json("create", "--name", "Soon", "--email", "s@x.example", "--expires-in", "3d")
    run_json("create", "--name", "Later", "--email", "l@x.example", "--expires-in", "30d")
    first = run_json("alerts", "daily")
    assert [(e["type"], e["customer_id"]) for e in first["events"]] == [
        ("token.expiring", soon["customer_id"])
    ]
    assert first["events"][0]["token_prefix"].startswith("bbk_")
    assert run_json("alerts", "daily")["count"] == 0  # once per token
    kept = run_json("webhooks", "deliveries", "--customer-id", soon["customer_id"])
    assert [d["type"] for d in kept["deliveries"]] == ["token.expiring"]


def test_alerts_and_webhooks_share_the_other_commands_options_and_output(customer):
    prefix = customer[:8]
    made = run("alerts", "set", "--customer-id", prefix, "--threshold", "75", "-o", "json")
    assert '"customer_id": "' + customer in made.stdout
    assert "Wrote to stage prod, region us-east-1" in made.stderr
    listed = run_json("alerts", "list", "--customer-id", prefix)
    assert listed["count"] == 1 and listed["alerts"][0]["thresholds"] == [75]
    assert "Fired: none yet" in run("alerts", "list", "--customer-id", prefix).stdout
    assert run("alerts", "list", "-o", "csv").stdout.splitlines() == [
        "customer_id,thresholds,source,credits_below,webhook_url",
        f"{customer},75,customer,,",
    ]
    hook = run("--output", "json", "webhooks", "set", "--customer-id", prefix,
               "--url", "https://hooks.example.com/x")  # fmt: skip
    assert "shown once" not in hook.stderr  # a person's hint, not for a script
    assert "Wrote to stage prod" in hook.stderr
    table = run("webhooks", "set", "--customer-id", prefix, "--url", "https://hooks.example.com/y")
    assert "shown once" in table.stderr and "whsec_" in table.stdout
    assert run("webhooks", "deliveries", "--customer-id", prefix, "-o", "csv").stdout == (
        "event_id,type,customer_id,created_at,status,attempts,last_status,last_error\n"
    )
    commands = (["alerts", "set"], ["alerts", "list"], ["webhooks", "set"],
                ["webhooks", "deliveries"], ["webhooks", "redeliver"], ["anomalies"])  # fmt: skip
    for command in commands:
        text = run(*command, "--help").stdout
        assert "Global options" in text and "Examples:" in text, command
        assert "bedrock-billing " + " ".join(command) in text, command
        assert "<bool>" not in text, command


def test_a_webhook_on_a_stage_that_was_never_deployed_says_so(customer):
    run("init", "--stage", "bare")
    cid = run_json("create", "--name", "B", "--email", "b@x.example", "--stage", "bare")[
        "customer_id"
    ]
    result = run("webhooks", "set", "--customer-id", cid, "--url", "https://hooks.example.com/x",
                 "--stage", "bare", expect=3)  # fmt: skip
    assert result.stderr == (
        "Error: the webhook signing key alias/bedrock-billing-bare-webhooks does not exist: "
        "deploy stage bare first (the stack creates it; so does the sandbox)\n"
    )
