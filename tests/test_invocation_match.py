"""The match of Bedrock's invocation log with the usage log: one SQL text, executed for
real by DuckDB over both layouts, sent unchanged to Athena with the same parameters."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import pytest
from moto.athena.models import QueryResults, athena_backends
from moto.core import DEFAULT_ACCOUNT_ID

from bedrock_billing.core.invocationlog import (
    CUSTOMER_KEY,
    INSTALLATION_KEY,
    MATCH_COLUMNS,
    MATCH_SQL,
    REQUEST_KEY,
)
from bedrock_billing.core.timeutil import FixedClock
from bedrock_billing.services.usage_reports import reconcile_invocations
from bedrock_billing.stores.athena import AthenaLogStore, trino_literal
from bedrock_billing.stores.invocationlogs import AthenaInvocationMatcher, LocalInvocationMatcher
from bedrock_billing.stores.logsink import serialize_line

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
ME, OTHER = "bb-prod-usage", "bb-staging-usage"
ALICE, BOB = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))
CLOCK = FixedClock("2026-11-03T00:00:00Z")


def line(rid, customer, ts, *, event="bedrock_invoke", i=10, o=20, request_id=None):
    return {
        "timestamp": ts, "event_type": event, "request_id": request_id or f"p-{rid}",
        "customer_id": customer, "model_id": HAIKU, "foundation_model": HAIKU,
        "api": "invoke", "status": 200 if event == "bedrock_invoke" else 502,
        "input_tokens": i, "output_tokens": o, "bedrock_request_id": rid,
    }  # fmt: skip


def record(rid, customer, ts, *, i=10, o=20, installation=ME, error=None, model=HAIKU):
    out = {
        "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": ts,
        "requestId": rid, "operation": "InvokeModel", "modelId": model,
        "input": {"inputTokenCount": i, "cacheReadInputTokenCount": 0,
                  "cacheWriteInputTokenCount": 0},
        "output": {"outputTokenCount": o},
    }  # fmt: skip
    if error:
        out["errorCode"] = error
    if installation:
        out["requestMetadata"] = {
            CUSTOMER_KEY: customer, REQUEST_KEY: f"p-{rid}", INSTALLATION_KEY: installation,
        }  # fmt: skip
    return out


def write(root: Path, lines: list[dict], records: list[dict]) -> LocalInvocationMatcher:
    usage, inv = root / "usage", root / "inv"
    for n, item in enumerate(lines):
        # arrival partition: the line's day, or the next for a late one ("late" flag)
        folder = usage / f"dt={item.pop('_dt', item['timestamp'][:10])}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n}.jsonl").write_text(serialize_line(item) + "\n")
    for n, item in enumerate(records):
        ts = item["timestamp"]
        folder = inv / ts[:4] / ts[5:7] / ts[8:10] / ts[11:13]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n}.json.gz").write_bytes(gzip.compress(json.dumps(item).encode() + b"\n"))
    usage.mkdir(exist_ok=True)
    inv.mkdir(exist_ok=True)
    return LocalInvocationMatcher(usage, inv)


@pytest.fixture
def matcher(tmp_path):
    lines = [
        line("r1", ALICE, "2026-10-05T10:00:00Z"),
        # admitted at midnight's edge, logged by Bedrock the next day: one request, day 31
        {**line("r2", ALICE, "2026-10-31T23:59:59Z"), "_dt": "2026-11-01"},
        line("r3", BOB, "2026-10-07T09:00:00Z", o=25),  # Bedrock says 20: tokens
        line("r4", BOB, "2026-10-08T09:00:00Z"),  # absent from Bedrock's log
        line("r6", ALICE, "2026-10-09T09:00:00Z", event="bedrock_error", i=None, o=None),
        # r7: an error line and the repaired line booked for it later: one billed request
        line("r7", BOB, "2026-10-10T09:00:00Z", event="bedrock_error", i=None, o=None),
        {**line("r7", BOB, "2026-10-10T09:00:01Z"), "repaired": True},
        line("r8", ALICE, "2026-10-11T09:00:00Z"),  # Bedrock: stream broke (errorCode)
        # r5: the proxy admitted it, then died before its outcome line
        {**line("r5", ALICE, "2026-10-06T10:59:59Z", event="proxy_admitted", i=None, o=None),
         "bedrock_request_id": None},
    ]
    records = [
        record("r1", ALICE, "2026-10-05T10:00:01Z"),
        record("r2", ALICE, "2026-11-01T00:00:01Z"),
        record("r3", BOB, "2026-10-07T09:00:01Z"),
        record("r5", ALICE, "2026-10-06T11:00:00Z", model="us." + HAIKU),  # never recorded
        record("r6", ALICE, "2026-10-09T09:00:01Z"),  # served, the proxy logged an error
        record("r7", BOB, "2026-10-10T09:00:01Z"),
        record("r8", ALICE, "2026-10-11T09:00:01Z", error="ModelStreamErrorException"),
        record("x1", BOB, "2026-10-12T00:00:00Z", installation=OTHER),  # another install
        record("x2", None, "2026-10-12T00:00:00Z", installation=None),  # untagged caller
        record("x3", ALICE, "2026-09-30T12:00:00Z"),  # before the period: not reported
    ]
    return write(tmp_path, lines, records)


def test_each_kind_of_difference_is_found_once_and_nothing_else(matcher):
    report = reconcile_invocations(matcher, *OCTOBER, ME, clock=CLOCK)
    found = {(d.bedrock_request_id, d.kind, d.customer_id, d.day.isoformat(), d.model)
             for d in report.differences}  # fmt: skip
    assert found == {
        ("r3", "tokens", BOB, "2026-10-07", HAIKU),
        ("r4", "not_in_aws_log", BOB, "2026-10-08", HAIKU),
        ("r5", "unrecorded", ALICE, "2026-10-06", HAIKU),  # profile id -> foundation model
        ("r6", "unrecorded", ALICE, "2026-10-09", HAIKU),
        ("r8", "not_in_aws_log", ALICE, "2026-10-11", HAIKU),
    }
    assert report.untagged == 1 and report.exit_code == 5
    admitted = {d.bedrock_request_id: d.admitted for d in report.differences}
    assert admitted["r5"] is True and admitted["r6"] is False
    tokens = next(r for r in report.rows() if r["kind"] == "tokens")
    assert (tokens["proxy_output_tokens"], tokens["aws_output_tokens"]) == (25, 20)
    assert tokens["token_difference"] == -5


def test_another_installations_calls_count_for_it_only(matcher):
    report = reconcile_invocations(matcher, *OCTOBER, OTHER, clock=CLOCK)
    unrecorded = [d.bedrock_request_id for d in report.differences if d.kind == "unrecorded"]
    assert unrecorded == ["x1"]


def test_the_sql_sent_to_athena_is_the_one_duckdb_ran(matcher, moto_session):
    moto_session.client("s3").create_bucket(Bucket="athena-results")
    sent: list[dict] = []
    moto_session.events.register(
        "before-parameter-build.athena.StartQueryExecution", lambda params, **_: sent.append(
            dict(params))
    )  # fmt: skip
    local = matcher.match(*OCTOBER, ME)
    sql, params = matcher.executed[-1]
    records = [tuple(row[c] for c in MATCH_COLUMNS) for row in local]
    info = [{"Name": c, "Type": "bigint" if c == "admitted" or c.startswith(("proxy_", "aws_"))
             and c.endswith("tokens") else "varchar"} for c in MATCH_COLUMNS]  # fmt: skip
    data = [{"Data": [{"VarCharValue": c} for c in MATCH_COLUMNS]}]
    data += [{"Data": [{"VarCharValue": None if v is None else str(v)} for v in r]}
             for r in records]  # fmt: skip
    athena_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].query_results_queue.append(
        QueryResults(data, info)
    )
    store = AthenaLogStore(session=moto_session, database="bb", poll_interval=0,
                           results_location="s3://athena-results/q/")  # fmt: skip
    remote = AthenaInvocationMatcher(store).match(*OCTOBER, ME)
    (call,) = sent
    assert call["QueryString"] == sql == MATCH_SQL
    assert call["ExecutionParameters"] == [trino_literal(p) for p in params]
    assert remote == local
