"""The sandbox runs the notifier in process on the meter's changes (issue 18's first
acceptance point): a customer with a daily limit of 10 and a webhook on a loopback receiver
sends 10 requests through the sandbox's proxy; the receiver gets exactly the 50%, 80% and
100% events, each verified by docs/webhooks.md's verifier, and the operator's SNS topic
(moto, read through a subscribed SQS queue) gets the same three."""

from __future__ import annotations

import json

import boto3
import requests

from bedrock_billing.sandbox.runner import Sandbox
from bedrock_billing.services import notifications
from bedrock_billing.services.customers import create_customer
from tests.webhook_support import Receiver, documented_verifier

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


def topic_queue(sb: Sandbox) -> tuple:
    kw = {"endpoint_url": sb.aws_endpoint_url, "region_name": sb.region,
          "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # fmt: skip
    sns, sqs = boto3.client("sns", **kw), boto3.client("sqs", **kw)
    queue = sqs.create_queue(QueueName="operator")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=sb.info()["alerts_topic_arn"], Protocol="sqs",
                  Endpoint=arn["QueueArn"], Attributes={"RawMessageDelivery": "true"})  # fmt: skip
    return sqs, queue


def drain(sqs, queue) -> list[dict]:
    out = []
    while got := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for message in got:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return out


def test_sandbox_delivers_the_three_signed_events_to_the_webhook_and_the_topic():
    verify = documented_verifier()
    with Sandbox(port=0, tls_port=0, stage="alerts") as sb, Receiver() as receiver:
        settings = sb.settings()
        sqs, queue = topic_queue(sb)
        created = create_customer(settings, name="Acme", email="ops@acme.example", daily_limit=10)
        cid, token = created["customer_id"], created["token"]
        secret = notifications.set_webhook(settings, cid, receiver.url, allow_private_url=True)[
            "signing_secret"
        ]
        statuses = []
        for _ in range(11):
            answer = requests.post(
                f"{sb.proxy_base_url}/model/{HAIKU}/invoke",
                json={
                    "anthropic_version": "bedrock-2023-05-31",
                    "max_tokens": 20,
                    "messages": [{"role": "user", "content": "hi"}],
                },
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            statuses.append(answer.status_code)
        sb.notifier_pump.drain()  # whatever the worker has not done yet, done now
        assert sb.notifier_pump.errors == []
        received = list(receiver.received)
        on_topic = drain(sqs, queue)
    # The 11th is refused (Bedrock's API says so with a 400 its SDKs do not retry), and
    # sends nothing more.
    assert statuses[:10] == [200] * 10 and statuses[10] in (400, 429)
    events = [json.loads(body) for _, body in received]
    assert sorted((e["type"], e["data"]["threshold_percent"]) for e in events) == [
        ("limit.reached", 100),
        ("threshold.reached", 50),
        ("threshold.reached", 80),
    ]
    for headers, body in received:
        assert verify(secret, headers["Bedrock-Billing-Signature"], body)
        assert headers["Bedrock-Billing-Event-Id"] == json.loads(body)["id"]
    assert sorted(on_topic, key=lambda e: e["id"]) == sorted(events, key=lambda e: e["id"])
