"""Every DynamoDB write of the proxy is safe to repeat when its answer is lost (issue 13,
item 4): the write landed, the connection dropped before DynamoDB's answer came back, and
the proxy's own retry or botocore's repeats it.

moto ignores ``ClientRequestToken``, so the network in front of moto's server is emulated
here with botocore's ``before-send`` event: ``LossyNetwork`` sends each request to moto
for real, and for the first ``lose`` requests of one operation drops the answer (raises
``ConnectionClosedError``, which botocore retries). With ``honour_tokens`` it also does
what DynamoDB does with a ``TransactWriteItems`` token it has applied in the last
10 minutes: answers success without applying it again.
"""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError

from bedrock_billing.core import schema
from bedrock_billing.core.schema import TableNames
from bedrock_billing.core.timeutil import FixedClock
from bedrock_billing.proxy.config import ProxyConfig
from bedrock_billing.proxy.handler import Proxy
from bedrock_billing.proxy.meter import ERROR_WRITE, USAGE_WRITE
from bedrock_billing.proxy.prices import PriceTable
from tests.proxy_support import (
    HAIKU,
    StubBedrock,
    claude_body,
    create_tables,
    event,
    put_customer,
    put_token,
    usage_items,
)

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
NOW = "2025-03-15T12:00:00Z"


class _Raw:
    """A urllib3-like raw body for a made-up AWSResponse."""

    def __init__(self, data: bytes):
        self.data = data

    def stream(self, *_args, **_kwargs):
        yield self.data


class LossyNetwork:
    """Sends ``operation``'s requests to moto for real and loses the first ``lose`` answers."""

    def __init__(self, client, operation: str, lose: int, honour_tokens: bool = False):
        self.client, self.operation = client, operation
        self.lose, self.honour_tokens = lose, honour_tokens
        self.sent = 0
        self.tokens: list[str | None] = []
        self.applied_tokens: set[str] = set()
        client.meta.events.register(f"before-send.dynamodb.{operation}", self)

    def __call__(self, request, **_):
        self.sent += 1
        token = json.loads(request.body or b"{}").get("ClientRequestToken")
        self.tokens.append(token)
        if self.honour_tokens and token in self.applied_tokens:
            response = self._success(request)  # DynamoDB: same token, already applied
        else:
            response = self.client._endpoint.http_session.send(request)
            if response.status_code == 200 and token:
                self.applied_tokens.add(token)
        if self.lose > 0:
            self.lose -= 1
            raise ConnectionClosedError(endpoint_url=request.url)  # the write landed
        return response

    @staticmethod
    def _success(request) -> AWSResponse:
        headers = {"x-amzn-RequestId": str(uuid.uuid4()), "Content-Type": "application/json"}
        return AWSResponse(request.url, 200, headers, _Raw(b"{}"))


@pytest.fixture
def lossy(moto_server, aws_credentials):
    """A proxy on moto's server through a client configured as the proxy's own (standard
    retries, ``max_attempts`` 3), a stub Bedrock and a fixed clock."""
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=moto_server,
        region_name="us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
        **CREDS,
    )
    tables = TableNames.for_stage("idem" + uuid.uuid4().hex[:8])
    create_tables(ddb, tables)
    logs: list[dict] = []
    metrics: list[dict] = []
    stub = StubBedrock(input_tokens=12, output_tokens=34)
    proxy = Proxy(
        ProxyConfig(tables=tables, prices=PriceTable.from_env({})),
        dynamodb=ddb,
        bedrock_runtime=stub,
        clock=FixedClock(NOW),
        log_sink=logs.append,
        metric_sink=metrics.append,
        sleep=lambda s: None,
    )

    class World:
        pass

    w = World()
    w.ddb, w.tables, w.proxy, w.logs, w.metrics, w.bedrock = ddb, tables, proxy, logs, metrics, stub

    def customer(**limits):
        cid = put_customer(ddb, tables, **limits)
        return cid, put_token(ddb, tables, cid)

    def items(cid):
        return usage_items(ddb, tables, cid)

    w.customer, w.items = customer, items
    return w


DAY = f"DAY#2025-03-15#{HAIKU}"


def test_a_usage_write_whose_answers_are_lost_is_counted_once(lossy):
    cid, token = lossy.customer(daily_request_limit=10)
    # Every attempt botocore makes inside the proxy's first try (``max_attempts: 3`` is 3
    # retries, 4 attempts) loses its answer, so the proxy's own loop sends the transaction
    # again: with the same token, DynamoDB skips it.
    net = LossyNetwork(lossy.ddb, "TransactWriteItems", lose=4, honour_tokens=True)
    assert lossy.proxy.handle(event(claude_body(), token))["statusCode"] == 200
    assert net.sent == 5
    assert len(set(net.tokens)) == 1 and net.tokens[0].startswith(USAGE_WRITE + "-")
    assert len(net.tokens[0]) <= 36
    day = lossy.items(cid)[DAY]
    assert (day["requests"], day["input_tokens"], day["output_tokens"]) == (1, 12, 34)
    assert lossy.items(cid)["METER#2025-03"]["tokens"] == 46
    assert lossy.logs[-1]["counter_write_failed"] is False


def test_a_refund_whose_answer_is_lost_gives_the_daily_slot_back_once(lossy):
    cid, token = lossy.customer(daily_request_limit=10)
    lossy.proxy.handle(event(claude_body(), token))  # one served request: d15 = 1
    lossy.bedrock.error = ("ServiceUnavailableException", "down")
    # No token honoured here: the per-request marker alone stops the second refund.
    net = LossyNetwork(lossy.ddb, "TransactWriteItems", lose=1)
    assert lossy.proxy.handle(event(claude_body(), token))["statusCode"] == 503
    assert net.sent == 2 and net.tokens[0] == net.tokens[1]
    assert net.tokens[0].startswith(ERROR_WRITE + "-")
    items = lossy.items(cid)
    assert items["METER#2025-03"]["d15"] == 1  # admitted twice, one given back, once
    assert items[DAY]["errors"] == 1
    [marker] = [sk for sk in items if sk.startswith(schema.ERROR_MARKER_PREFIX)]
    assert marker == schema.error_marker_key(lossy.logs[-1]["request_id"])
    assert lossy.logs[-1]["counter_write_failed"] is False


def test_a_bad_request_whose_error_count_is_lost_is_counted_once(lossy):
    cid, token = lossy.customer(daily_request_limit=10)
    lossy.bedrock.error = ("ValidationException", "bad")
    net = LossyNetwork(lossy.ddb, "TransactWriteItems", lose=1)
    assert lossy.proxy.handle(event(claude_body(), token))["statusCode"] == 400
    assert net.sent == 2
    items = lossy.items(cid)
    assert items[DAY]["errors"] == 1
    assert items["METER#2025-03"]["d15"] == 1  # the customer's own fault keeps its slot


def test_an_admission_whose_answer_is_lost_is_not_repeated(lossy):
    cid, token = lossy.customer(daily_request_limit=10)
    net = LossyNetwork(lossy.ddb, "UpdateItem", lose=1)
    response = lossy.proxy.handle(event(claude_body(), token))
    # The ADD landed but its answer is unknown to the proxy: refused as unavailable,
    # never admitted twice (at most one daily slot is lost, documented in docs/proxy.md).
    assert response["statusCode"] == 503
    assert net.sent == 1
    assert lossy.items(cid)["METER#2025-03"]["d15"] == 1
    assert lossy.bedrock.calls == []


def test_an_admission_that_was_throttled_is_retried(lossy):
    cid, token = lossy.customer(daily_request_limit=10)
    throttled = {"n": 1}

    def throttle_first(request, **_):
        if throttled["n"]:
            throttled["n"] -= 1
            body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"}'
            headers = {"x-amzn-RequestId": "t", "Content-Type": "application/x-amz-json-1.0"}
            return AWSResponse(request.url, 400, headers, _Raw(body))
        return None

    lossy.ddb.meta.events.register("before-send.dynamodb.UpdateItem", throttle_first)
    assert lossy.proxy.handle(event(claude_body(), token))["statusCode"] == 200
    assert lossy.items(cid)["METER#2025-03"]["d15"] == 1


def test_a_refusal_count_whose_answer_is_lost_is_not_repeated(lossy):
    cid, token = lossy.customer(daily_request_limit=0)  # refused without an admission write
    net = LossyNetwork(lossy.ddb, "UpdateItem", lose=1)
    assert lossy.proxy.handle(event(claude_body(), token))["statusCode"] == 429
    assert net.sent == 1
    assert lossy.items(cid)[DAY]["refused"] == 1
    assert lossy.logs[-1]["event_type"] == "proxy_refused"


def test_write_tokens_are_stable_per_request_and_kind_and_fit_dynamodb():
    from datetime import UTC, datetime

    from bedrock_billing.core.models import normalise_model_id
    from bedrock_billing.proxy.meter import Admission

    at = datetime(2025, 3, 15, 12, tzinfo=UTC)
    a = Admission("c1", normalise_model_id(HAIKU), at, None, "req-1")
    again = Admission("c1", normalise_model_id(HAIKU), at, None, "req-1")
    other = Admission("c1", normalise_model_id(HAIKU), at, None, "req-2")
    assert a.write_token(USAGE_WRITE) == again.write_token(USAGE_WRITE)
    tokens = {a.write_token(USAGE_WRITE), a.write_token(ERROR_WRITE), other.write_token("use")}
    assert len(tokens) == 3 and all(1 <= len(t) <= 36 for t in tokens)
    # Without a request id every admission still gets its own.
    bare = Admission("c1", normalise_model_id(HAIKU), at, None)
    assert bare.write_token("use") != Admission("c1", bare.model, at, None).write_token("use")


def _key_token(lossy, cid: str, daily_limit: int) -> str:
    """A named key with its own daily limit (its token item carries key_id and the limit)."""
    token = put_token(lossy.ddb, lossy.tables, cid)
    from bedrock_billing.core.tokens import hash_token

    lossy.ddb.update_item(
        TableName=lossy.tables.tokens,
        Key={"token_hash": {"S": hash_token(token)}},
        UpdateExpression="SET key_id = :k, daily_request_limit = :d",
        ExpressionAttributeValues={":k": {"S": "k_ci"}, ":d": {"N": str(daily_limit)}},
    )
    return token


def test_a_named_keys_refund_whose_answer_is_lost_gives_both_slots_back_once(lossy):
    """The key's own day item rides in the same error transaction as main's ERR# marker:
    a repeat changes neither the customer's meter nor the key's admissions."""
    cid, _ = lossy.customer(daily_request_limit=10)
    token = _key_token(lossy, cid, daily_limit=5)
    lossy.proxy.handle(event(claude_body(), token))  # served: d15 = 1, key admitted = 1
    lossy.bedrock.error = ("ServiceUnavailableException", "down")
    net = LossyNetwork(lossy.ddb, "TransactWriteItems", lose=1)
    assert lossy.proxy.handle(event(claude_body(), token))["statusCode"] == 503
    assert net.sent == 2 and net.tokens[0] == net.tokens[1]
    items = lossy.items(cid)
    key_day = items[schema.key_day_key("k_ci", FixedClock(NOW)())]
    assert items["METER#2025-03"]["d15"] == 1
    assert (key_day["admitted"], key_day["errors"], key_day["requests"]) == (1, 1, 1)
    assert items[DAY]["errors"] == 1


def test_a_named_keys_own_400_keeps_both_slots(lossy):
    cid, _ = lossy.customer(daily_request_limit=10)
    token = _key_token(lossy, cid, daily_limit=5)
    lossy.bedrock.error = ("ValidationException", "bad")
    assert lossy.proxy.handle(event(claude_body(), token))["statusCode"] == 400
    items = lossy.items(cid)
    key_day = items[schema.key_day_key("k_ci", FixedClock(NOW)())]
    assert items["METER#2025-03"]["d15"] == 1 and key_day["admitted"] == 1
    assert key_day["errors"] == 1
