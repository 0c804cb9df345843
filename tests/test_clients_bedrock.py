"""The clients customers already use, unchanged but for the endpoint and the key, through
the real proxy over TLS (moto's server, the fake Bedrock, the local proxy server):
boto3's ``bedrock-runtime``, AnthropicBedrock and langchain-aws' ChatBedrockConverse.

Each answer equals what the fake Bedrock gives the same request sent to it directly, and
the counters and the log line carry exactly the tokens the fake reported for it.
"""

from __future__ import annotations

import json
import ssl
import uuid
from datetime import UTC, datetime

import boto3
import pytest
from botocore.config import Config

from bedrock_billing.core.logschema import FIELD_NAMES
from bedrock_billing.core.schema import TableNames
from bedrock_billing.fakebedrock import FakeBedrock
from bedrock_billing.localhttp.tls import make_tls_files
from bedrock_billing.proxy.config import ProxyConfig
from bedrock_billing.proxy.handler import Proxy
from bedrock_billing.proxy.prices import PriceTable
from bedrock_billing.sandbox.proxy_server import ProxyServer
from tests.proxy_support import HAIKU, SONNET, create_tables, put_customer, put_token, usage_items

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
PROMPT = {"role": "user", "content": [{"text": "What is the capital of France?"}]}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def world(moto_server, aws_credentials, certificate, monkeypatch):
    """A customer, its token as the Bedrock API key, and the proxy over TLS."""
    ddb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1", **CREDS)
    tables = TableNames.for_stage("cl" + uuid.uuid4().hex[:8])
    create_tables(ddb, tables)
    with FakeBedrock(seed=5) as fake, FakeBedrock(seed=5) as reference:
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
                auth_cache_ttl=0,  # limit changes below take effect at once
                negative_cache_ttl=0,
            ),
            dynamodb=ddb,
            bedrock_runtime=bedrock,
            log_sink=logs.append,
            admission_sink=[].append,  # the outcome lines only (one per request)
        )
        cid = put_customer(ddb, tables, daily_request_limit=50)
        token = put_token(ddb, tables, cid)
        server = ProxyServer(proxy, tls=certificate).start()
        endpoint = f"https://127.0.0.1:{server.port}/prod"
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", token)
        monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate.ca_bundle))
        try:
            yield _World(ddb, tables, cid, token, logs, fake, reference, endpoint, certificate)
        finally:
            server.stop()


class _World:
    def __init__(self, ddb, tables, cid, token, logs, fake, reference, endpoint, cert):
        self.ddb, self.tables, self.cid, self.token = ddb, tables, cid, token
        self.logs, self.fake, self.reference = logs, fake, reference
        self.endpoint, self.cert = endpoint, cert

    def client(self, **config):
        return boto3.client(
            "bedrock-runtime",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            config=Config(**config) if config else None,
        )

    def direct(self):
        """The fake itself, as the reference for what the answer must be."""
        return boto3.client(
            "bedrock-runtime",
            endpoint_url=self.reference.url,
            region_name="us-east-1",
            config=Config(signature_version="v4"),
            **CREDS,
        )

    def assert_metered(self, requests: int = 1, model: str = HAIKU) -> None:
        lines = [line for line in self.logs if line["event_type"] == "bedrock_invoke"]
        assert len(lines) == requests
        totals = dict.fromkeys(("input_tokens", "output_tokens"), 0)
        for line in lines:
            assert tuple(line) == FIELD_NAMES and line["wire_api"] == "bedrock-runtime"
            reported = self.fake.usage_by_request_id[line["bedrock_request_id"]]
            for key in (
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_write_input_tokens",
            ):
                assert line[key] == reported[key], key
            assert line["usage_estimated"] is False
            totals["input_tokens"] += reported["input_tokens"]
            totals["output_tokens"] += reported["output_tokens"]
        day = f"DAY#{datetime.now(UTC).date().isoformat()}#{model}"
        item = usage_items(self.ddb, self.tables, self.cid)[day]
        assert item["requests"] == requests
        assert item["input_tokens"] == totals["input_tokens"]
        assert item["output_tokens"] == totals["output_tokens"]


_VARYING = {"id", "invocationLatency", "firstByteLatency", "latencyMs"}


def same(value):
    """An answer less what differs between two calls (message ids, latencies)."""
    if isinstance(value, dict):
        return {k: same(v) for k, v in value.items() if k not in _VARYING}
    if isinstance(value, list):
        return [same(v) for v in value]
    return value


def claude_body(text: str = "What is the capital of France?") -> bytes:
    return json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 200,
            "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        }
    ).encode()


# ---- boto3


def test_boto3_invoke_model_with_the_token_as_api_key(world):
    answer = world.client().invoke_model(modelId=HAIKU, body=claude_body())
    expected = world.direct().invoke_model(modelId=HAIKU, body=claude_body())
    assert same(json.loads(answer["body"].read())) == same(json.loads(expected["body"].read()))
    headers = answer["ResponseMetadata"]["HTTPHeaders"]
    reported = world.fake.calls[0]
    assert headers["x-amzn-bedrock-input-token-count"] == str(reported["input_tokens"])
    assert headers["x-amzn-bedrock-output-token-count"] == str(reported["output_tokens"])
    assert world.fake.calls[0]["model_id"] == HAIKU
    world.assert_metered()


def test_boto3_invoke_model_with_response_stream(world):
    answer = world.client().invoke_model_with_response_stream(modelId=HAIKU, body=claude_body())
    chunks = [json.loads(e["chunk"]["bytes"]) for e in answer["body"]]
    expected = world.direct().invoke_model_with_response_stream(modelId=HAIKU, body=claude_body())
    assert same(chunks) == same([json.loads(e["chunk"]["bytes"]) for e in expected["body"]])
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] > 0
    world.assert_metered()
    assert world.logs[0]["streamed"] is True


def test_boto3_converse_and_converse_stream(world):
    kwargs = {"messages": [PROMPT], "inferenceConfig": {"maxTokens": 100}}
    answer = world.client().converse(modelId=SONNET, **kwargs)
    expected = world.direct().converse(modelId=SONNET, **kwargs)
    assert answer["output"] == expected["output"] and answer["usage"] == expected["usage"]
    events = list(world.client().converse_stream(modelId=SONNET, **kwargs)["stream"])
    reference = list(world.direct().converse_stream(modelId=SONNET, **kwargs)["stream"])
    strip = [{k: v for k, v in e.items() if k != "metadata"} for e in events]
    assert strip == [{k: v for k, v in e.items() if k != "metadata"} for e in reference]
    assert "messageStart" in events[0] and "metadata" in events[-1]
    world.assert_metered(requests=2, model=SONNET)


def test_model_id_as_an_inference_profile_and_unencoded_colon(world):
    """AnthropicBedrock leaves ':' unencoded; boto3 sends %3A; both reach one route."""
    answer = world.client().invoke_model(modelId="us." + HAIKU, body=claude_body())
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert world.fake.calls[0]["model_id"] == "us." + HAIKU
    assert world.logs[0]["foundation_model"] == HAIKU


def test_cache_tokens_are_passed_and_metered(world):
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "system": [{"type": "text", "text": "x" * 6000, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hello"}],
    }
    client = world.client()
    for _ in range(2):
        client.invoke_model(modelId=HAIKU, body=json.dumps(body))
    writes = [c["cache_write_input_tokens"] for c in world.fake.calls]
    reads = [c["cache_read_input_tokens"] for c in world.fake.calls]
    assert writes[0] > 0 and reads[1] > 0
    world.assert_metered(requests=2)


# ---- refusals reach each SDK as the modelled exception, retried only where that helps


def set_limits(world, **attrs) -> None:
    values = {}
    for name, value in attrs.items():
        if isinstance(value, list):
            values[name] = {"L": [{"S": v} for v in value]}
        elif isinstance(value, str):
            values[name] = {"S": value}
        else:
            values[name] = {"N": str(value)}
    names = {f"#a{i}": n for i, n in enumerate(values)}
    world.ddb.update_item(
        TableName=world.tables.customers,
        Key={"customer_id": {"S": world.cid}},
        UpdateExpression="SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(values))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":a{i}": v for i, v in enumerate(values.values())},
    )


def test_daily_limit_is_a_quota_error_boto3_does_not_retry(world):
    set_limits(world, daily_request_limit=1)
    client = world.client()  # default retry settings (legacy mode: 5 attempts on a 429)
    client.invoke_model(modelId=HAIKU, body=claude_body())
    with pytest.raises(client.exceptions.ServiceQuotaExceededException) as caught:
        client.invoke_model(modelId=HAIKU, body=claude_body())
    assert "daily request limit" in str(caught.value) and "resets at" in str(caught.value)
    assert len(world.logs) == 2  # exactly one request at the proxy for the refusal


def test_requests_per_minute_is_a_throttle_with_retry_after(world):
    set_limits(world, requests_per_minute=1)
    client = world.client(retries={"total_max_attempts": 1})
    client.invoke_model(modelId=HAIKU, body=claude_body())
    with pytest.raises(client.exceptions.ThrottlingException) as caught:
        client.invoke_model(modelId=HAIKU, body=claude_body())
    assert "requests-per-minute" in str(caught.value)
    assert int(caught.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 0


def test_budget_and_model_not_allowed_and_revoked_token(world):
    from tests.proxy_support import set_token_state

    client = world.client()
    set_limits(world, monthly_budget="0")
    with pytest.raises(client.exceptions.ServiceQuotaExceededException) as caught:
        client.invoke_model(modelId=HAIKU, body=claude_body())
    assert "budget" in str(caught.value)
    set_limits(world, monthly_budget="100", allowed_models=[SONNET])
    fresh = world.client()
    with pytest.raises(fresh.exceptions.AccessDeniedException) as caught:
        fresh.invoke_model(modelId=HAIKU, body=claude_body())
    assert "not allowed" in str(caught.value)
    set_token_state(world.ddb, world.tables, world.token, "revoked")
    with pytest.raises(fresh.exceptions.AccessDeniedException):
        fresh.invoke_model(modelId=SONNET, body=claude_body())


def test_bedrock_errors_pass_through_with_their_code(world):
    world.fake.fail_next("validation", message="messages: field required")
    client = world.client()
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.invoke_model(modelId=HAIKU, body=claude_body())
    assert "field required" in str(caught.value)
    world.fake.fail_next("not_found")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke_model(modelId=HAIKU, body=claude_body())


def test_unknown_converse_field_is_a_validation_error_before_bedrock(world):
    import botocore.exceptions

    client = world.client()
    client.meta.events.register(
        "before-sign.bedrock-runtime.Converse",
        lambda request, **_: setattr(
            request, "data", json.dumps({"messages": [PROMPT], "self": 1}).encode()
        ),
    )
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.converse(modelId=HAIKU, messages=[PROMPT])
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "'self'" in str(caught.value) and world.fake.calls == []


# ---- AnthropicBedrock and langchain-aws


def test_anthropic_bedrock_messages_create_and_stream(world):
    anthropic = pytest.importorskip("anthropic")
    httpx2 = pytest.importorskip("httpx2")
    client = anthropic.AnthropicBedrock(
        base_url=world.endpoint,
        api_key=world.token,
        aws_region="us-east-1",
        http_client=httpx2.Client(verify=ssl.create_default_context(cafile=world.cert.ca_bundle)),
    )
    message = client.messages.create(
        model=HAIKU, max_tokens=100, messages=[{"role": "user", "content": "Hello"}]
    )
    assert message.content[0].text and message.usage.output_tokens > 0
    with client.messages.stream(
        model=HAIKU, max_tokens=100, messages=[{"role": "user", "content": "Hello again"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.usage.output_tokens > 0
    world.assert_metered(requests=2)


def test_langchain_chat_bedrock_converse_invoke_and_stream(world):
    langchain_aws = pytest.importorskip("langchain_aws")
    chat = langchain_aws.ChatBedrockConverse(
        model=SONNET, region_name="us-east-1", endpoint_url=world.endpoint, max_tokens=100
    )
    answer = chat.invoke("What is the capital of France?")
    assert answer.content
    parts = list(chat.stream("And of Spain?"))
    assert "".join(part.text for part in parts)
    world.assert_metered(requests=2, model=SONNET)
