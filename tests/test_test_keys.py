"""Test keys through the real proxy over TLS (moto's server, the local proxy server): boto3's
``bedrock-runtime`` client parses every answer (InvokeModel and its stream, Converse and
its stream, CountTokens) and the legacy routes answer in their format, with no call to the
fake Bedrock (counted), nothing billed, and the key's own rate limit."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import boto3
import pytest
import requests
from botocore.config import Config

from bedrock_billing.core.logschema import FIELD_NAMES
from bedrock_billing.core.schema import TableNames, key_day_key, meter_key
from bedrock_billing.fakebedrock import FakeBedrock
from bedrock_billing.localhttp.tls import make_tls_files
from bedrock_billing.proxy.config import ProxyConfig
from bedrock_billing.proxy.handler import Proxy
from bedrock_billing.proxy.prices import PriceTable
from bedrock_billing.proxy.testkeys import answer_text
from bedrock_billing.sandbox.proxy_server import ProxyServer
from bedrock_billing.services import customers as customer_svc
from bedrock_billing.services import keys as key_svc
from bedrock_billing.settings import resolve_settings
from tests.proxy_support import HAIKU, SONNET, create_tables, usage_items

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
PROMPT = {"role": "user", "content": [{"text": "What is the capital of France?"}]}
CLAUDE = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def world(moto_server, aws_credentials, certificate, monkeypatch):
    ddb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1", **CREDS)
    stage = "tk" + uuid.uuid4().hex[:8]
    tables = TableNames.for_stage(stage)
    create_tables(ddb, tables)
    settings = resolve_settings(stage=stage, endpoint_url=moto_server, region="us-east-1")
    created = customer_svc.create_customer(
        settings, name="Acme", email="ops@acme.example", daily_limit=100
    )
    cid = created["customer_id"]
    key = key_svc.create_key(settings, cid, name="integration", test=True)
    with FakeBedrock(seed=5) as fake:
        bedrock = boto3.client(
            "bedrock-runtime",
            endpoint_url=fake.url,
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}, signature_version="v4"),
            **CREDS,
        )
        logs: list[dict] = []
        proxy = Proxy(
            ProxyConfig(
                tables=tables,
                prices=PriceTable.from_env({}),
                region="us-east-1",
                test_key_requests_per_minute=9,
            ),
            dynamodb=ddb,
            bedrock_runtime=bedrock,
            log_sink=logs.append,
        )
        server = ProxyServer(proxy, tls=certificate).start()
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", key["token"])
        monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate.ca_bundle))
        try:
            yield {
                "ddb": ddb, "tables": tables, "cid": cid, "key": key, "fake": fake, "logs": logs,
                "endpoint": f"https://127.0.0.1:{server.port}/prod", "settings": settings,
                "proxy": proxy, "ca": str(certificate.ca_bundle),
            }  # fmt: skip
        finally:
            server.stop()


def test_a_test_key_is_answered_in_every_wire_format_without_bedrock(world):
    assert world["key"]["token"].startswith("bbk_test_") and world["key"]["test"] is True
    client = boto3.client(
        "bedrock-runtime", endpoint_url=world["endpoint"], region_name="us-east-1"
    )
    body = json.dumps(CLAUDE).encode()

    answer = json.loads(client.invoke_model(modelId=HAIKU, body=body)["body"].read())
    assert answer["type"] == "message" and answer["content"][0]["text"].startswith("[test]")
    assert answer["content"][0]["text"] == answer_text({"modelId": HAIKU, "body": body})
    again = json.loads(client.invoke_model(modelId=HAIKU, body=body)["body"].read())
    assert again == answer  # deterministic

    stream = client.invoke_model_with_response_stream(modelId=HAIKU, body=body)["body"]
    chunks = [json.loads(e["chunk"]["bytes"]) for e in stream]
    assert chunks[0]["type"] == "message_start" and chunks[-1]["type"] == "message_stop"
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] > 0

    kwargs = {"messages": [PROMPT], "inferenceConfig": {"maxTokens": 100}}
    converse = client.converse(modelId=SONNET, **kwargs)
    assert converse["output"]["message"]["content"][0]["text"].startswith("[test]")
    assert converse["usage"]["totalTokens"] > 0 and converse["stopReason"] == "end_turn"
    events = list(client.converse_stream(modelId=SONNET, **kwargs)["stream"])
    assert "messageStart" in events[0] and "metadata" in events[-1]
    assert events[1]["contentBlockDelta"]["delta"]["text"].startswith("[test]")

    counted = client.count_tokens(modelId=HAIKU, input={"converse": {"messages": [PROMPT]}})
    assert counted["inputTokens"] > 0

    headers = {"Authorization": f"Bearer {world['key']['token']}"}
    legacy = requests.post(
        world["endpoint"] + "/bedrock", json={"modelId": HAIKU, **CLAUDE}, headers=headers,
        verify=world["ca"], timeout=30,
    )  # fmt: skip
    assert legacy.status_code == 200 and legacy.json()["content"][0]["text"].startswith("[test]")
    legacy_converse = requests.post(
        world["endpoint"] + "/bedrock/converse", json={"modelId": SONNET, "messages": [PROMPT]},
        headers=headers, verify=world["ca"], timeout=30,
    )  # fmt: skip
    assert legacy_converse.status_code == 200
    assert legacy_converse.json()["output"]["message"]["role"] == "assistant"

    assert world["fake"].calls == []  # the fake Bedrock was never called
    assert world["proxy"].test_responder.calls == 8

    # Nothing billed: no DAY# item, no meter admission; the key's test_requests counted apart.
    now = datetime.now(UTC)
    items = usage_items(world["ddb"], world["tables"], world["cid"])
    assert not [sk for sk in items if sk.startswith("DAY#")]
    assert not items.get(meter_key(now), {})
    assert items[key_day_key(world["key"]["key_id"], now)]["test_requests"] == 7
    lines = world["logs"]
    assert all(tuple(line) == FIELD_NAMES for line in lines)
    assert {line["event_type"] for line in lines} == {"test_invoke"}
    assert all(line["test_key"] and line["key_id"] == world["key"]["key_id"] for line in lines)
    assert world["key"]["token"] not in json.dumps(lines)

    # No invoice line: the month's invoice for this customer has no usage to price.
    from bedrock_billing.services.invoices import run_invoices

    run = run_invoices(world["settings"], period=now.strftime("%Y-%m"), customer_id=world["cid"])
    assert not run.failures
    assert run.no_usage == [world["cid"]]
    assert all(doc["total"] in ("0", "0.00") for doc in run.invoices)

    # Usage shows it apart.
    report = key_svc.key_usage(world["settings"], world["cid"])
    assert report["totals"][world["key"]["key_id"]]["test_requests"] == 7
    assert report["totals"][world["key"]["key_id"]]["requests"] == 0


def test_a_test_key_has_its_own_low_rate_limit(world):
    client = boto3.client(
        "bedrock-runtime", endpoint_url=world["endpoint"], region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}),
    )  # fmt: skip
    body = json.dumps(CLAUDE).encode()
    statuses = []
    for _ in range(11):
        try:
            client.invoke_model(modelId=HAIKU, body=body)
            statuses.append(200)
        except client.exceptions.ThrottlingException:
            statuses.append(429)
    # 9 per minute (a minute boundary between two calls would only allow more).
    assert statuses.count(200) >= 9 and statuses[:9] == [200] * 9
    assert world["fake"].calls == []


def test_a_test_key_answers_the_anthropic_and_openai_sdks_without_bedrock(world):
    """The gateway routes (Anthropic Messages, OpenAI chat completions, /v1/models) answer a
    test key in their own formats through the SDKs, streamed and not; still no Bedrock."""
    anthropic = pytest.importorskip("anthropic")
    openai = pytest.importorskip("openai")
    token = world["key"]["token"]
    plain = ProxyServer(world["proxy"]).start()  # both SDKs accept http on loopback
    base = f"http://127.0.0.1:{plain.port}/prod"
    try:
        messages = anthropic.Anthropic(base_url=base, api_key=token, max_retries=0)
        message = messages.messages.create(
            model="claude-3-haiku-20240307", max_tokens=50,
            messages=[{"role": "user", "content": "Hi"}],
        )  # fmt: skip
        assert message.content[0].text.startswith("[test]") and message.usage.output_tokens > 0
        with messages.messages.stream(
            model=HAIKU, max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text.startswith("[test]") and final.stop_reason == "end_turn"

        chat = openai.OpenAI(base_url=base + "/v1", api_key=token, max_retries=0)
        completion = chat.chat.completions.create(
            model=SONNET, messages=[{"role": "user", "content": "Hi"}], max_tokens=50
        )
        assert completion.choices[0].message.content.startswith("[test]")
        assert completion.usage.total_tokens > 0
        chunks = list(
            chat.chat.completions.create(
                model=SONNET, messages=[{"role": "user", "content": "Hi"}], stream=True,
                stream_options={"include_usage": True},
            )
        )  # fmt: skip
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed.startswith("[test]") and chunks[-1].usage.total_tokens > 0
        assert [m.id for m in chat.models.list().data]  # the key's model list
    finally:
        plain.stop()
    assert world["fake"].calls == []
    assert world["proxy"].test_responder.calls == 4
    lines = [line for line in world["logs"] if line["wire_api"] != "legacy"]
    assert {line["wire_api"] for line in lines} == {"anthropic-messages", "openai-chat"}
    assert {line["event_type"] for line in lines} == {"test_invoke"}
    items = usage_items(world["ddb"], world["tables"], world["cid"])
    assert not [sk for sk in items if sk.startswith("DAY#")]
