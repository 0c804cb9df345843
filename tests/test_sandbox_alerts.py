"""The sandbox runs the notifier in process on the meter's changes: a webhook on a loopback
receiver gets the threshold events of requests sent through the sandbox's proxy."""

from __future__ import annotations

import json

import requests

from bedrock_billing.sandbox.runner import Sandbox
from bedrock_billing.services import notifications
from bedrock_billing.services.customers import create_customer
from tests.webhook_support import Receiver, documented_verifier

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


def test_sandbox_delivers_signed_threshold_events_to_a_loopback_webhook():
    verify = documented_verifier()
    with Sandbox(port=0, stage="alerts") as sb, Receiver() as receiver:
        settings = sb.settings()
        created = create_customer(settings, name="Acme", email="ops@acme.example", daily_limit=4)
        cid, token = created["customer_id"], created["token"]
        secret = notifications.set_webhook(settings, cid, receiver.url, allow_private_url=True)[
            "signing_secret"
        ]
        for _ in range(4):
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
            assert answer.status_code == 200
        sb.notifier_pump.drain()  # whatever the worker has not done yet, done now
        assert sb.notifier_pump.errors == []
        received = list(receiver.received)
    events = [json.loads(body) for _, body in received]
    assert sorted((e["type"], e["data"]["threshold_percent"]) for e in events) == [
        ("limit.reached", 100),
        ("threshold.reached", 50),
        ("threshold.reached", 80),
    ]
    for headers, body in received:
        assert verify(secret, headers["Bedrock-Billing-Signature"], body)
