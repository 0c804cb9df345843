"""Usage sent through the proxy's handler: its counters and its log lines (to S3, read by
the local engine because the sandbox marker is there) give the same report, and reconcile
finds nothing until a counter write is lost."""

from __future__ import annotations

from datetime import date, timedelta

import boto3
import pytest
from moto import mock_aws

from bedrock_billing.core.schema import TableNames, day_key
from bedrock_billing.core.timeutil import FixedClock
from bedrock_billing.proxy.config import ProxyConfig
from bedrock_billing.proxy.handler import Proxy
from bedrock_billing.proxy.prices import PriceTable
from bedrock_billing.services.usage_reports import reconcile, usage_report
from bedrock_billing.services.usage_sources import open_log_store
from bedrock_billing.stores.logsink import S3LogSink, write_sandbox_marker
from bedrock_billing.stores.usage_counters import CounterStore, scan_customer_ids
from bedrock_billing.stores.usagelog import LogConfig
from tests import proxy_support
from tests.proxy_support import (
    HAIKU,
    SONNET,
    StubBedrock,
    claude_body,
    create_tables,
    event,
    put_customer,
    put_token,
)

aws_env = proxy_support.aws_env
BUCKET = "bb-test-usage-logs"
FIRST, LAST = date(2026, 9, 28), date(2026, 10, 3)


@pytest.fixture
def served(aws_env):
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        tables = TableNames.for_stage("test")
        create_tables(ddb, tables)
        s3.create_bucket(Bucket=BUCKET)
        write_sandbox_marker(s3, BUCKET)
        clock = FixedClock("2026-09-28T09:00:00Z")
        stub = StubBedrock()
        # Lines reach the bucket 30 s after admission: late-evening ones land in tomorrow's dt.
        sink = S3LogSink(s3, BUCKET, "logs/", clock=lambda: clock() + timedelta(seconds=30))
        proxy = Proxy(
            ProxyConfig(tables=tables, prices=PriceTable.from_env({})),
            dynamodb=ddb,
            bedrock_runtime=stub,
            clock=clock,
            log_sink=sink,
            sleep=lambda s: None,
        )
        a = put_customer(ddb, tables)
        b = put_customer(ddb, tables, daily_request_limit=2)
        c = put_customer(ddb, tables, allowed_models=[HAIKU])
        idle = put_customer(ddb, tables)
        tokens = {cid: put_token(ddb, tables, cid) for cid in (a, b, c, idle)}

        def send(cid, at, model=HAIKU, counts=(10, 20, 0, 0), fail=None, token=None):
            clock.set(at)
            stub.counts, stub.error = counts, fail
            body = claude_body(model=model)
            return proxy.handle(event(body, token or tokens[cid]))["statusCode"]

        # 28 Sep: A twice (one late in the evening), B three times (third over its limit)
        assert send(a, "2026-09-28T10:00:00Z", counts=(100, 50, 10, 5)) == 200
        assert send(a, "2026-09-28T23:59:50Z", model=SONNET, counts=(7, 3, 0, 0)) == 200
        for n in range(3):
            send(b, f"2026-09-28T12:0{n}:00Z")
        # 29 Sep: nobody. 30 Sep (month end): Bedrock fails for A; C refused a model
        assert send(a, "2026-09-30T08:00:00Z", fail=("ThrottlingException", "slow down")) >= 400
        assert send(c, "2026-09-30T23:59:59Z", model=SONNET) == 403
        assert send(c, "2026-09-30T23:59:58Z", counts=(1, 1, 0, 0)) == 200
        # 1 Oct: an unknown token (counts for nobody), B and C served
        assert send(None, "2026-10-01T00:00:10Z", token="bbk_" + "x" * 43) == 401
        assert send(b, "2026-10-01T00:00:20Z", counts=(5, 6, 7, 8)) == 200
        assert send(c, "2026-10-01T15:00:00Z", counts=(2, 2, 0, 0)) == 200
        # 3 Oct: A once
        assert send(a, "2026-10-03T11:00:00Z", counts=(30, 40, 0, 0)) == 200
        sink.flush()
        clock.set("2026-10-10T00:00:00Z")
        session = boto3.Session(region_name="us-east-1")
        yield {
            "ddb": ddb,
            "s3": s3,
            "tables": tables,
            "clock": clock,
            "ids": scan_customer_ids(ddb, tables.customers),
            "a": a,
            "b": b,
            "c": c,
            "idle": idle,
            "log": open_log_store(session, LogConfig(bucket=BUCKET, prefix="logs/")),
            "counters": CounterStore(ddb, tables.usage),
        }


def test_counters_and_log_agree_on_usage_served_by_the_proxy(served):
    s = served
    assert s["log"].engine == "local"  # chosen by the sandbox marker
    kw = {"all_customers": True, "clock": s["clock"]}
    from_counters = usage_report(s["counters"], s["ids"], FIRST, LAST, **kw)
    from_log = usage_report(s["log"], s["ids"], FIRST, LAST, **kw)
    assert from_counters.totals == from_log.totals
    assert from_counters.totals == {
        "requests": 8,  # A 3 served, B 2 + 1, C 2
        "input_tokens": 100 + 7 + 10 + 10 + 1 + 5 + 2 + 30,
        "output_tokens": 50 + 3 + 20 + 20 + 1 + 6 + 2 + 40,
        "cache_read_input_tokens": 10 + 7,
        "cache_write_input_tokens": 5 + 8,
        "refused": 2,  # B over its daily limit, C's model not allowed
        "errors": 1,  # A's Bedrock failure
        "estimated": 0,
    }
    assert from_counters.daily == from_log.daily
    assert dict(from_log.daily)[date(2026, 9, 29)]["requests"] == 0
    assert from_counters.customer_totals == from_log.customer_totals
    assert from_log.customer_totals[s["idle"]]["requests"] == 0
    # A's 23:59:50 request arrived on 29 Sep, and stays on 28 Sep
    (late,) = [r for r in from_log.rows if r.customer_id == s["a"] and r.model == SONNET]
    assert late.day == date(2026, 9, 28)
    assert [r.to_dict() for r in from_counters.rows] == [r.to_dict() for r in from_log.rows]


def test_reconcile_agrees_then_finds_a_lost_counter_write(served):
    s = served
    report = reconcile(s["counters"], s["log"], s["ids"], FIRST, LAST, clock=s["clock"])
    assert report.differences == [] and report.exit_code == 0
    s["ddb"].delete_item(
        TableName=s["tables"].usage,
        Key={"customer_id": {"S": s["c"]}, "sk": {"S": day_key(date(2026, 10, 1), HAIKU)}},
    )
    report = reconcile(s["counters"], s["log"], s["ids"], FIRST, LAST, clock=s["clock"])
    assert report.exit_code == 5
    assert {(d.customer_id, d.counter, d.log_value) for d in report.differences} == {
        (s["c"], "requests", 1),
        (s["c"], "input_tokens", 2),
        (s["c"], "output_tokens", 2),
    }
