"""The notifier Lambda's entry point on moto in process: a stream batch as Lambda sends it
(filtered records only), the daily schedule, and its environment."""

from __future__ import annotations

import json

import boto3
import pytest

from bedrock_billing.core.schema import TableNames
from bedrock_billing.notifier import handler
from tests.proxy_support import create_tables, put_customer, put_token


@pytest.fixture
def lambda_env(moto_aws, monkeypatch):
    tables = TableNames.for_stage("lam")
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    create_tables(ddb, tables)
    sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", "us-east-1")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"],
                  Attributes={"RawMessageDelivery": "true"})  # fmt: skip
    for name, value in (
        ("USAGE_TABLE", tables.usage),
        ("CUSTOMERS_TABLE", tables.customers),
        ("TOKENS_TABLE", tables.tokens),
        ("ALERTS_TOPIC_ARN", topic),
        ("ALERT_THRESHOLDS", "90"),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(handler, "_notifier", None)
    yield ddb, tables, sqs, queue
    monkeypatch.setattr(handler, "_notifier", None)


def record(name: str, cid: str, sk: str, old: dict | None, new: dict) -> dict:
    change = {"Keys": {"customer_id": {"S": cid}, "sk": {"S": sk}}, "NewImage": new}
    if old is not None:
        change["OldImage"] = old
    return {"eventSource": "aws:dynamodb", "eventName": name, "dynamodb": change}


def messages(sqs, queue) -> list[dict]:
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


def test_a_stream_batch_fires_the_environments_default_threshold_once(lambda_env):
    ddb, tables, sqs, queue = lambda_env
    cid = put_customer(ddb, tables, daily_request_limit=10)
    batch = {
        "Records": [
            record("MODIFY", cid, "METER#2026-12", {"d03": {"N": "8"}}, {"d03": {"N": "9"}}),
            record("MODIFY", cid, "DAY#2026-12-03#m", {}, {"requests": {"N": "9"}}),
            record("REMOVE", cid, "MIN#2026-12-03T10:00", {"n": {"N": "1"}}, {}),
        ]
    }
    assert handler.lambda_handler(batch, None) == {"fired": 1}
    assert handler.lambda_handler(batch, None) == {"fired": 0}  # a retried batch
    [event] = messages(sqs, queue)
    assert (event["type"], event["data"]["threshold_percent"]) == ("threshold.reached", 90)


def test_the_daily_schedule_sends_token_expiring(lambda_env):
    from datetime import UTC, datetime, timedelta

    ddb, tables, sqs, queue = lambda_env
    cid = put_customer(ddb, tables)
    put_token(ddb, tables, cid, expires_at=datetime.now(UTC) + timedelta(days=2))
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event"}
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    for n in range(1, 15):  # a steady fortnight, then yesterday ten times busier
        put_day(ddb, tables, cid, yesterday - timedelta(days=n), 100)
    put_day(ddb, tables, cid, yesterday, 1000)
    first = handler.lambda_handler(scheduled, None)
    assert first == {"token_expiring": 1, "anomaly_detected": 2}  # tokens and requests
    assert handler.lambda_handler(scheduled, None) == {"token_expiring": 0, "anomaly_detected": 0}
    events = messages(sqs, queue)
    assert sorted(e["type"] for e in events) == [
        "anomaly.detected",
        "anomaly.detected",
        "token.expiring",
    ]
    assert {e["customer_id"] for e in events} == {cid}


def put_day(ddb, tables, cid, day, requests):
    from bedrock_billing.core.schema import day_key

    ddb.put_item(
        TableName=tables.usage,
        Item={
            "customer_id": {"S": cid},
            "sk": {"S": day_key(day, "anthropic.claude-3-haiku-20240307-v1:0")},
            "requests": {"N": str(requests)},
            "input_tokens": {"N": str(requests * 300)},
            "output_tokens": {"N": str(requests * 300)},
        },
    )
