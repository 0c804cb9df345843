"""The proxy records what AWS bills apart: the service tier Bedrock served (InvokeModel's
header, Converse's body, ConverseStream's ``metadata`` event), the share of prompt-cache
writes with a 1-hour lifetime (Converse's ``cacheDetails``, Anthropic's ``cache_creation``)
and the inference scope of the model id, each against the fake Bedrock's own record."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from bedrock_billing.core.logschema import FIELD_NAMES
from bedrock_billing.core.schema import TableNames
from bedrock_billing.fakebedrock import FakeBedrock
from tests import proxy_support
from tests.proxy_support import (
    SONNET,
    create_tables,
    event,
    proxy_before_fake,
    put_customer,
    put_token,
)

aws_env = proxy_support.aws_env
LONG = " ".join(["cached context words"] * 200)


@pytest.fixture(scope="module")
def fake():
    with FakeBedrock(seed=5) as server:
        yield server


@pytest.fixture
def world(aws_env, fake):
    fake.reset()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        tables = TableNames.for_stage("tiers")
        create_tables(ddb, tables)
        proxy, logs = proxy_before_fake(ddb, tables, fake.url)
        cid = put_customer(ddb, tables)
        yield proxy, put_token(ddb, tables, cid), logs


def converse_body(text: str, ttl: str | None, tier: str | None) -> dict:
    point = {"type": "default", **({"ttl": ttl} if ttl else {})}
    body = {
        "system": [{"text": text}, {"cachePoint": point}],
        "messages": [{"role": "user", "content": [{"text": "Summarise it."}]}],
        "inferenceConfig": {"maxTokens": 20},
    }
    if tier:
        body["serviceTier"] = {"type": tier}
    return body


def claude_body(text: str, ttl: str | None) -> dict:
    control = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 20,
        "system": [{"type": "text", "text": text, "cache_control": control}],
        "messages": [{"role": "user", "content": "Summarise it."}],
    }


def check_against_fake(line: dict, fake) -> dict:
    assert tuple(line) == FIELD_NAMES and line["event_type"] == "bedrock_invoke"
    record = fake.usage_by_request_id[line["bedrock_request_id"]]
    for key in ("input_tokens", "cache_write_input_tokens", "cache_write_1h_input_tokens"):
        assert line[key] == record[key], key
    assert line["service_tier"] == record["service_tier"]
    return record


@pytest.mark.parametrize("op", ["converse", "converse-stream"])
def test_converse_records_tier_and_one_hour_cache_writes(world, fake, op):
    proxy, token, logs = world
    path = f"/model/global.{SONNET}/{op}"
    body = converse_body(LONG + op, "1h", "priority")
    assert proxy.handle(event(body, token, path=path))["statusCode"] == 200
    record = check_against_fake(logs[-1], fake)
    assert record["cache_write_1h_input_tokens"] == record["cache_write_input_tokens"] > 0
    assert logs[-1]["service_tier"] == "priority"
    assert logs[-1]["inference_scope"] == "global"


def test_a_five_minute_write_is_not_counted_as_one_hour(world, fake):
    proxy, token, logs = world
    body = converse_body(LONG + "5m", None, None)
    path = f"/model/us.{SONNET}/converse"
    assert proxy.handle(event(body, token, path=path))["statusCode"] == 200
    line = logs[-1]
    check_against_fake(line, fake)
    assert line["cache_write_input_tokens"] > 0 and line["cache_write_1h_input_tokens"] == 0
    assert line["service_tier"] is None and line["inference_scope"] == "geo"


@pytest.mark.parametrize("op", ["invoke", "invoke-with-response-stream"])
def test_invoke_model_reads_the_tier_header_and_anthropics_split(world, fake, op):
    proxy, token, logs = world
    body = claude_body(LONG + op, "1h")
    headers = {"X-Amzn-Bedrock-Service-Tier": "flex"}
    path = f"/model/{SONNET}/{op}"
    response = proxy.handle(event(body, token, path=path, headers=headers))
    assert response["statusCode"] == 200
    record = check_against_fake(logs[-1], fake)
    assert record["cache_write_1h_input_tokens"] > 0
    assert logs[-1]["service_tier"] == "flex" and logs[-1]["inference_scope"] == "in_region"
    if op == "invoke":
        usage = json.loads(response["body"])["usage"]
        assert usage["cache_creation"]["ephemeral_1h_input_tokens"] == (
            logs[-1]["cache_write_1h_input_tokens"]
        )
