"""End to end on loopback: requests through the local proxy (moto's server, the fake Bedrock),
the notifier fed the usage table's METER# changes as stream records, a loopback webhook
receiver and the operator's SNS topic (moto, read through a subscribed SQS queue)."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import requests
from botocore.config import Config

from bedrock_billing.core import alerts
from bedrock_billing.core.schema import TableNames, resource_base
from bedrock_billing.fakebedrock import FakeBedrock
from bedrock_billing.proxy.config import ProxyConfig
from bedrock_billing.proxy.handler import Proxy
from bedrock_billing.proxy.prices import PriceTable
from bedrock_billing.sandbox.meterstream import MeterStream
from bedrock_billing.sandbox.proxy_server import ProxyServer
from bedrock_billing.services import notifications
from bedrock_billing.settings import resolve_settings
from tests.proxy_support import HAIKU, claude_body, create_tables, put_customer, put_token
from tests.webhook_support import Receiver, documented_verifier

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def fake_bedrock():
    with FakeBedrock(seed=18) as fake:
        yield fake


class Installation:
    """One stage on moto's server: tables, KMS key, SNS topic with an SQS queue on it."""

    def __init__(self, moto_url: str):
        self.stage = "al" + uuid.uuid4().hex[:8]
        self.tables = TableNames.for_stage(self.stage)
        kw = {"endpoint_url": moto_url, "region_name": "us-east-1", **CREDS}
        self.ddb = boto3.client("dynamodb", **kw)
        create_tables(self.ddb, self.tables)
        base = resource_base(self.stage, "bedrock-billing")
        kms = boto3.client("kms", **kw)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alerts.webhook_key_alias(base), TargetKeyId=key)
        sns, self.sqs = boto3.client("sns", **kw), boto3.client("sqs", **kw)
        topic = sns.create_topic(Name=alerts.alerts_topic_name(base))["TopicArn"]
        self.queue = self.sqs.create_queue(QueueName=base + "-q")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        self.settings = resolve_settings(
            stage=self.stage, endpoint_url=moto_url, region="us-east-1"
        )
        self.settings.alerts_topic_arn = topic
        self.waits: list[float] = []

    def notifier(self, **overrides):
        overrides.setdefault("sleep", self.waits.append)
        return notifications.notifier_for(self.settings, **overrides)

    def topic_messages(self) -> list[dict]:
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
            if not got.get("Messages"):
                return out
            for message in got["Messages"]:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def install(moto_server, aws_credentials):
    return Installation(moto_server)


@pytest.fixture
def proxy_for(install, fake_bedrock):
    fake_bedrock.reset()
    bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=fake_bedrock.url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}),
        **CREDS,
    )
    proxy = Proxy(
        ProxyConfig(tables=install.tables, prices=PriceTable.from_env({})),
        dynamodb=install.ddb,
        bedrock_runtime=bedrock,
        log_sink=lambda line: None,
    )
    with ProxyServer(proxy) as server:
        yield server


def invoke(server, token: str) -> int:
    response = requests.post(
        f"{server.url}/model/{HAIKU}/invoke",
        json={k: v for k, v in claude_body().items() if k != "modelId"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    return response.status_code


def test_ten_requests_at_a_daily_limit_of_ten_send_three_signed_events(install, proxy_for):
    cid = put_customer(install.ddb, install.tables, daily_request_limit=10)
    token = put_token(install.ddb, install.tables, cid)
    verify = documented_verifier()
    with Receiver() as receiver:
        hook = notifications.set_webhook(
            install.settings, cid, receiver.url, allow_private_url=True
        )
        secret = hook["signing_secret"]
        stream, notifier = MeterStream(install.ddb, install.tables.usage), install.notifier()
        statuses = []
        for _ in range(10):
            statuses.append(invoke(proxy_for, token))
            stream.pump(notifier)  # as Lambda would, after each change of the meter
        assert statuses == [200] * 10
        assert invoke(proxy_for, token) != 200  # the 11th is refused: no new event
        stream.pump(notifier)

    events = [json.loads(body) for _, body in receiver.received]
    assert [(e["type"], e["data"]["threshold_percent"]) for e in events] == [
        ("threshold.reached", 50),
        ("threshold.reached", 80),
        ("limit.reached", 100),
    ]
    assert [e["data"]["current_value"] for e in events] == [5, 8, 10]
    for headers, body in receiver.received:
        event = json.loads(body)
        assert headers["Bedrock-Billing-Event-Id"] == event["id"]
        assert verify(secret, headers["Bedrock-Billing-Signature"], body)
        assert not verify("whsec_wrong", headers["Bedrock-Billing-Signature"], body)
        assert not verify(secret, headers["Bedrock-Billing-Signature"], body + b" ")
        assert set(event) == {"id", "type", "created", "customer_id", "data"}
        assert event["customer_id"] == cid
    assert install.topic_messages() == events  # the operator's topic got the same three
    delivered = notifications.list_deliveries(install.settings, customer_id=cid)
    assert [d["status"] for d in delivered["deliveries"]] == ["delivered"] * 3


def test_concurrent_requests_crossing_a_threshold_fire_it_once(install, proxy_for):
    """200 requests at once cross 50% of 300 while four notifiers race on the changes."""
    cid = put_customer(install.ddb, install.tables, daily_request_limit=300)
    token = put_token(install.ddb, install.tables, cid)
    notifications.set_alerts(install.settings, cid, ["50"])
    streams = [MeterStream(install.ddb, install.tables.usage) for _ in range(4)]
    notifiers = [install.notifier() for _ in streams]
    done = threading.Event()
    fired: list[dict] = []
    lock = threading.Lock()

    def race(stream, notifier):
        while True:
            finished = done.is_set()
            events = stream.pump(notifier)
            with lock:
                fired.extend(events)
            if finished:
                return

    with ThreadPoolExecutor(max_workers=36) as pool:
        racers = [pool.submit(race, s, n) for s, n in zip(streams, notifiers, strict=True)]
        answers = list(pool.map(lambda _: invoke(proxy_for, token), range(200)))
        done.set()
        for racer in racers:
            racer.result()
    assert answers.count(200) == 200
    assert [(e["type"], e["data"]["threshold_percent"]) for e in fired] == [
        ("threshold.reached", 50)
    ]
    assert len(install.topic_messages()) == 1
    # A replay of the whole history (a retried batch) fires nothing again.
    fresh = MeterStream(install.ddb, install.tables.usage)
    assert fresh.pump(install.notifier()) == []


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(install):
    cid = put_customer(install.ddb, install.tables, daily_request_limit=2)
    notifications.set_alerts(install.settings, cid, ["100"])
    with Receiver(script=[500, 500, 200]) as receiver:
        notifications.set_webhook(install.settings, cid, receiver.url, allow_private_url=True)
        notifier = install.notifier()
        sk = "METER#2026-12"
        notifier.process_meter(cid, sk, {"d03": 0}, {"d03": 2})
    assert len(receiver.received) == 3
    ids = {h["Bedrock-Billing-Event-Id"] for h, _ in receiver.received}
    assert len(ids) == 1  # the same event each time
    assert install.waits == [1.0, 2.0]  # exponential backoff between the attempts
    row = notifications.list_deliveries(install.settings, customer_id=cid)["deliveries"][0]
    assert (row["status"], row["attempts"], row["last_status"]) == ("delivered", 3, 200)


def test_a_receiver_that_never_answers_leaves_a_failed_delivery_to_redeliver(install):
    cid = put_customer(install.ddb, install.tables, daily_request_limit=1)
    notifications.set_alerts(install.settings, cid, ["100"])
    with Receiver(script=["hang", "hang", "hang"]) as receiver:
        notifications.set_webhook(install.settings, cid, receiver.url, allow_private_url=True)
        notifier = install.notifier(max_attempts=3, timeout=0.2)
        [event] = notifier.process_meter(cid, "METER#2026-12", {}, {"d01": 1})
        assert event["type"] == "limit.reached"
        failed = notifications.list_deliveries(install.settings, failed=True)["deliveries"]
        assert [(d["event_id"], d["attempts"]) for d in failed] == [(event["id"], 3)]
        assert failed[0]["last_error"]
        # The receiver is back: redeliver sends the same event, and it leaves the list.
        receiver.default = 200
        row = notifications.redeliver(install.settings, event["id"])
    assert row["status"] == "delivered" and row["attempts"] == 4
    assert json.loads(receiver.received[-1][1])["id"] == event["id"]
    assert notifications.list_deliveries(install.settings, failed=True)["deliveries"] == []
