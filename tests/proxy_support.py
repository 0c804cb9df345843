"""Test helpers for the proxy: tables and items in the HELPERS.md formats, Lambda events,
and a minimal in-process Bedrock client (for unit tests; end-to-end tests use the HTTP
fake Bedrock endpoint)."""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime

from botocore.exceptions import ClientError

from bedrock_billing.core.schema import TableNames
from bedrock_billing.core.timeutil import iso_z
from bedrock_billing.core.tokens import display_prefix, generate_token, hash_token
from tests.aws_helpers import create_tables  # noqa: F401  (the proxy tests import it here)

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET = "anthropic.claude-3-sonnet-20240229-v1:0"
CREATED = "2025-01-01T00:00:00Z"


def put_customer(
    client,
    tables: TableNames,
    *,
    customer_id: str | None = None,
    status: str = "active",
    daily_request_limit: int | None = None,
    monthly_token_limit: int | None = None,
    requests_per_minute: int | None = None,
    monthly_budget: str | None = None,
    allowed_models: list[str] | None = None,
) -> str:
    customer_id = customer_id or str(uuid.uuid4())
    item = {
        "customer_id": {"S": customer_id},
        "name": {"S": "Acme"},
        "email": {"S": "ops@acme.example"},
        "status": {"S": status},
        "created_at": {"S": CREATED},
        "updated_at": {"S": CREATED},
    }
    for name, value in (
        ("daily_request_limit", daily_request_limit),
        ("monthly_token_limit", monthly_token_limit),
        ("requests_per_minute", requests_per_minute),
    ):
        if value is not None:
            item[name] = {"N": str(value)}
    if monthly_budget is not None:
        item["monthly_budget"] = {"S": monthly_budget}
    if allowed_models is not None:
        item["allowed_models"] = {"L": [{"S": m} for m in allowed_models]}
    client.put_item(TableName=tables.customers, Item=item)
    return customer_id


def put_token(
    client,
    tables: TableNames,
    customer_id: str,
    *,
    token: str | None = None,
    state: str = "active",
    expires_at: datetime | None = None,
    grace_until: datetime | None = None,
) -> str:
    token = token or generate_token()
    item = {
        "token_hash": {"S": hash_token(token)},
        "customer_id": {"S": customer_id},
        "prefix": {"S": display_prefix(token)},
        "state": {"S": state},
        "created_at": {"S": CREATED},
    }
    if expires_at:
        item["expires_at"] = {"S": iso_z(expires_at)}
    if grace_until:
        item["grace_until"] = {"S": iso_z(grace_until)}
    client.put_item(TableName=tables.tokens, Item=item)
    return token


def set_token_state(client, tables: TableNames, token: str, state: str, **extra) -> None:
    names, values, sets = {"#s": "state"}, {":s": {"S": state}}, ["#s = :s"]
    for i, (name, value) in enumerate(extra.items()):
        names[f"#e{i}"] = name
        values[f":e{i}"] = {"S": iso_z(value) if isinstance(value, datetime) else value}
        sets.append(f"#e{i} = :e{i}")
    client.update_item(
        TableName=tables.tokens,
        Key={"token_hash": {"S": hash_token(token)}},
        UpdateExpression="SET " + ", ".join(sets),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def usage_items(client, tables: TableNames, customer_id: str) -> dict[str, dict[str, int]]:
    """Every usage item of a customer: sort key -> {attribute: int}."""
    out = {}
    kwargs = {
        "TableName": tables.usage,
        "KeyConditionExpression": "customer_id = :c",
        "ExpressionAttributeValues": {":c": {"S": customer_id}},
    }
    while True:
        page = client.query(**kwargs)
        for item in page["Items"]:
            out[item["sk"]["S"]] = {k: int(v["N"]) for k, v in item.items() if "N" in v}
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def event(
    body: dict | str | None,
    token: str | None = None,
    *,
    path: str = "/bedrock",
    method: str = "POST",
    version: str = "1.0",
    headers: dict | None = None,
    source_ip: str | None = None,
) -> dict:
    """A Lambda proxy event in payload format 1.0 (REST API) or 2.0 (Function URL);
    ``source_ip`` is where API Gateway puts the caller's address in each format."""
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    raw = body if isinstance(body, str) or body is None else json.dumps(body)
    request_id = str(uuid.uuid4())
    if version == "2.0":
        return {
            "version": "2.0",
            "rawPath": path,
            "headers": {k.lower(): v for k, v in hdrs.items()},
            "requestContext": {
                "http": {"method": method, "path": path, "sourceIp": source_ip},
                "requestId": request_id,
            },
            "body": raw,
            "isBase64Encoded": False,
        }
    return {
        "resource": "/bedrock",
        "path": path,
        "httpMethod": method,
        "headers": hdrs,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "requestContext": {
            "requestId": request_id,
            "stage": "prod",
            "identity": {"sourceIp": source_ip},
        },
        "body": raw,
        "isBase64Encoded": False,
    }


def claude_body(text: str = "What is the capital of France?", model: str = HAIKU, **extra):
    return {
        "modelId": model,
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        **extra,
    }


class StubBedrock:
    """A duck-typed bedrock-runtime client: fixed token counts, recorded calls."""

    def __init__(self, input_tokens=12, output_tokens=34, cache_read=0, cache_write=0):
        self.counts = (input_tokens, output_tokens, cache_read, cache_write)
        self.calls: list[tuple[str, dict]] = []
        self.error: tuple[str, str] | None = None  # (code, message) to raise
        self.stream_error_after: int | None = None  # break the stream after n chunks
        self.with_headers = True
        self.with_metrics = True
        self.answer = {"content": [{"type": "text", "text": "Paris."}], "stop_reason": "end_turn"}

    def _maybe_fail(self, op):
        if self.error:
            code, message = self.error
            raise ClientError({"Error": {"Code": code, "Message": message}}, op)

    def _meta(self, headers=None):
        request_id = str(uuid.uuid4())
        return {"RequestId": request_id, "HTTPHeaders": headers or {}}

    def invoke_model(self, **kwargs):
        self.calls.append(("invoke_model", kwargs))
        self._maybe_fail("InvokeModel")
        i, o, cr, cw = self.counts
        headers = {}
        if self.with_headers:
            headers = {
                "x-amzn-bedrock-input-token-count": str(i),
                "x-amzn-bedrock-output-token-count": str(o),
                "x-amzn-bedrock-cache-read-input-token-count": str(cr),
                "x-amzn-bedrock-cache-write-input-token-count": str(cw),
                "x-amzn-bedrock-invocation-latency": "120",
            }
        body = json.dumps({"id": "msg_1", **self.answer}).encode()
        return {
            "body": io.BytesIO(body),
            "contentType": "application/json",
            "ResponseMetadata": self._meta(headers),
        }

    def _chunks(self):
        i, o, cr, cw = self.counts
        chunks = [
            {
                "type": "message_start",
                "message": {"usage": {"input_tokens": i, "output_tokens": 1}},
            },
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Par"}},
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "is."}},
            {"type": "message_delta", "usage": {"output_tokens": o}},
            {"type": "message_stop"},
        ]
        if self.with_metrics:
            chunks[-1]["amazon-bedrock-invocationMetrics"] = {
                "inputTokenCount": i,
                "outputTokenCount": o,
                "cacheReadInputTokenCount": cr,
                "cacheWriteInputTokenCount": cw,
                "invocationLatency": 150,
                "firstByteLatency": 40,
            }
        return chunks

    def invoke_model_with_response_stream(self, **kwargs):
        self.calls.append(("invoke_model_with_response_stream", kwargs))
        self._maybe_fail("InvokeModelWithResponseStream")
        chunks = self._chunks()
        fail_after = self.stream_error_after

        def events():
            for n, chunk in enumerate(chunks):
                if fail_after is not None and n == fail_after:
                    raise ClientError(
                        {"Error": {"Code": "modelStreamErrorException", "Message": "boom"}},
                        "InvokeModelWithResponseStream",
                    )
                yield {"chunk": {"bytes": json.dumps(chunk).encode()}}

        return {
            "body": events(),
            "contentType": "application/json",
            "ResponseMetadata": self._meta(),
        }

    def converse(self, **kwargs):
        self.calls.append(("converse", kwargs))
        self._maybe_fail("Converse")
        i, o, cr, cw = self.counts
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": "Paris."}]}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": i,
                "outputTokens": o,
                "totalTokens": i + o + cr + cw,
                "cacheReadInputTokens": cr,
                "cacheWriteInputTokens": cw,
            },
            "metrics": {"latencyMs": 99},
            "ResponseMetadata": self._meta(),
        }

    def count_tokens(self, **kwargs):
        self.calls.append(("count_tokens", kwargs))
        self._maybe_fail("CountTokens")
        return {"inputTokens": self.counts[0], "ResponseMetadata": self._meta()}

    def converse_stream(self, **kwargs):
        self.calls.append(("converse_stream", kwargs))
        self._maybe_fail("ConverseStream")
        i, o, cr, cw = self.counts
        events = [
            {"messageStart": {"role": "assistant"}},
            {"contentBlockDelta": {"delta": {"text": "Paris."}, "contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}},
            {
                "metadata": {
                    "usage": {
                        "inputTokens": i,
                        "outputTokens": o,
                        "totalTokens": i + o,
                        "cacheReadInputTokens": cr,
                        "cacheWriteInputTokens": cw,
                    },
                    "metrics": {"latencyMs": 77},
                }
            },
        ]
        return {"stream": iter(events), "ResponseMetadata": self._meta()}


# ---- an in-process world: moto DynamoDB, the stub Bedrock, a fixed clock, captured logs

from types import SimpleNamespace  # noqa: E402

import boto3  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def aws_env(aws_credentials):
    """The shared fake credentials (conftest.py); the autouse fixture cleared the rest."""


@pytest.fixture
def world(aws_env):
    from moto import mock_aws

    from bedrock_billing.core.timeutil import FixedClock
    from bedrock_billing.proxy.config import ProxyConfig
    from bedrock_billing.proxy.handler import Proxy
    from bedrock_billing.proxy.prices import PriceTable

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        tables = TableNames.for_stage("test")
        create_tables(ddb, tables)
        calls: list[str] = []
        ddb.meta.events.register(
            "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
        )
        clock = FixedClock("2025-03-15T12:00:00Z")
        stub = StubBedrock()
        logs: list[dict] = []
        admissions: list[dict] = []  # the lines written at admission, apart from outcomes
        metrics: list[dict] = []
        config = ProxyConfig(tables=tables, prices=PriceTable.from_env({}))

        def make(**overrides):
            cfg = ProxyConfig(**{**config.__dict__, **overrides})
            return Proxy(
                cfg,
                dynamodb=ddb,
                bedrock_runtime=stub,
                clock=clock,
                log_sink=logs.append,
                metric_sink=metrics.append,
                admission_sink=admissions.append,
                sleep=lambda s: None,
            )

        yield SimpleNamespace(
            ddb=ddb,
            tables=tables,
            calls=calls,
            clock=clock,
            bedrock=stub,
            logs=logs,
            admissions=admissions,
            metrics=metrics,
            proxy=make(),
            make=make,
        )


# ---- the real proxy in front of the fake Bedrock (a FakeBedrock's url)

FAKE_CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def proxy_before_fake(ddb, tables: TableNames, fake_url: str, **proxy_kwargs):
    """The proxy on ``ddb``'s ``tables``, calling the fake Bedrock at ``fake_url`` with no
    retries, its usage lines collected: returns ``(proxy, logs)``. ``proxy_kwargs`` go to
    ``Proxy`` (e.g. ``admission_sink=[].append`` keeps the admission lines out of ``logs``)."""
    from botocore.config import Config

    from bedrock_billing.proxy.config import ProxyConfig
    from bedrock_billing.proxy.handler import Proxy
    from bedrock_billing.proxy.prices import PriceTable

    bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=fake_url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}),
        **FAKE_CREDS,
    )
    logs: list[dict] = []
    proxy = Proxy(
        ProxyConfig(tables=tables, prices=PriceTable.from_env({})),
        dynamodb=ddb,
        bedrock_runtime=bedrock,
        log_sink=logs.append,
        **proxy_kwargs,
    )
    return proxy, logs
