"""The proxy's per-request EMF records: valid by the specification, no API call, apart from
the usage line (whose fields stay fixed)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from bedrock_billing.core.logschema import FIELD_NAMES
from bedrock_billing.proxy.config import ConfigError, ProxyConfig
from tests import proxy_support
from tests.proxy_support import claude_body, event, put_customer, put_token

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world
SCHEMA = json.loads((Path(__file__).parent / "data" / "emf_schema.json").read_text())


def check_emf(record: dict) -> None:
    jsonschema.validate(record, SCHEMA)
    assert "event_type" not in record  # the usage-log pipeline's filter leaves it out
    for directive in record["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                assert isinstance(record[name], str) and record[name].strip(), name
        for metric in directive["Metrics"]:
            value = record[metric["Name"]]
            assert isinstance(value, int | float) and not isinstance(value, bool), metric


def test_an_answered_request_emits_one_valid_record_per_model(world):
    cid = put_customer(world.ddb, world.tables)
    token = put_token(world.ddb, world.tables, cid)
    world.bedrock.counts = (12, 34, 0, 0)
    proxy = world.make(request_metrics=True)
    calls_before = len(world.calls)
    assert proxy.handle(event(claude_body(), token))["statusCode"] == 200
    [record] = world.metrics
    check_emf(record)
    assert (record["Requests"], record["Errors"], record["Refusals"]) == (1, 0, 0)
    assert (record["InputTokens"], record["OutputTokens"], record["Tokens"]) == (12, 34, 46)
    assert record["Model"] == "anthropic.claude-3-haiku-20240307-v1:0"
    assert "CustomerId" not in record  # per-customer metrics are the operator's choice
    assert record["_aws"]["Timestamp"] == 1742040000000
    [line] = world.logs
    assert tuple(line) == FIELD_NAMES  # the usage line is unchanged
    # token, customer, admission, usage: the metrics add no call (they are log lines)
    assert world.calls[calls_before:] == ["GetItem", "GetItem", "UpdateItem", "TransactWriteItems"]


def test_refusals_and_throttles_and_customer_dimension(world):
    cid = put_customer(world.ddb, world.tables, daily_request_limit=1)
    token = put_token(world.ddb, world.tables, cid)
    proxy = world.make(request_metrics=True, customer_metrics=True)
    proxy.handle(event(claude_body(), token))
    proxy.handle(event(claude_body(), token))  # over the daily limit
    proxy.handle(event(claude_body(), "bbk_" + "x" * 43))  # unknown token
    # A stranger naming made-up models must not mint a metric (billed monthly) per name.
    made_up = dict(claude_body(), modelId="anthropic.made-up-7f3a9c-v1:0")
    proxy.handle(event(made_up, "bbk_" + "y" * 43))
    for record in world.metrics:
        check_emf(record)
    first, limited, unknown, stranger = world.metrics
    assert first["Model"] == "anthropic.claude-3-haiku-20240307-v1:0"
    assert limited["Model"] == unknown["Model"] == stranger["Model"] == "other"
    assert first["CustomerId"] == cid and first["Requests"] == 1
    assert (limited["Refusals"], limited["Requests"]) == (1, 0)
    assert unknown["Refusals"] == 1 and "CustomerId" not in unknown
    per_customer = first["_aws"]["CloudWatchMetrics"][1]
    assert per_customer["Dimensions"] == [["CustomerId"]]
    assert [m["Name"] for m in per_customer["Metrics"]] == ["Requests", "Errors", "Tokens"]


def test_the_schema_would_catch_a_bad_record():
    bad = {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "", "Dimensions": [],
                                                          "Metrics": []}]}}  # fmt: skip
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)


def test_metrics_are_on_in_a_deployment_and_customer_dimension_is_opt_in():
    assert ProxyConfig.from_env({}).request_metrics is True
    assert ProxyConfig.from_env({}).customer_metrics is False
    on = {"BEDROCK_BILLING_CUSTOMER_METRICS": "on", "BEDROCK_BILLING_REQUEST_METRICS": "off"}
    config = ProxyConfig.from_env(on)
    assert (config.request_metrics, config.customer_metrics) == (False, True)
    with pytest.raises(ConfigError):
        ProxyConfig.from_env({"BEDROCK_BILLING_CUSTOMER_METRICS": "maybe"})


@pytest.mark.parametrize(
    ("status", "charged", "test", "requests", "errors"),
    [
        (200, None, False, 1, 0),
        (504, True, False, 1, 1),  # stopped at the deadline, billed: a request and an error
        (504, False, False, 0, 1),  # undelivered and the operator does not charge it
        (200, None, True, 0, 0),  # a test key's answer is never a billed request
    ],
)
def test_requests_counts_what_the_usage_line_bills(status, charged, test, requests, errors):
    from datetime import UTC, datetime

    from bedrock_billing.proxy.logline import RequestLog, request_metrics

    log = RequestLog(
        timestamp=datetime(2026, 12, 3, tzinfo=UTC), request_id="r1", customer_id="c1",
        foundation_model="anthropic.claude-3-haiku-20240307-v1:0", admitted=True,
        status=status, charged=charged, test=test,
    )  # fmt: skip
    record = request_metrics(log)
    check_emf(record)
    assert (record["Requests"], record["Errors"]) == (requests, errors)
