"""reconcile pairs each admission line with its request's outcome line (issue 13, item 1):
an admitted request without an outcome is reported as abandoned, a request whose two lines
arrive on either side of midnight pairs, and admission lines are never usage."""

from __future__ import annotations

from datetime import date

import pytest
from moto.athena.models import QueryResults, athena_backends
from moto.core import DEFAULT_ACCOUNT_ID

from bedrock_billing.core.admissions import ABANDONED_BY_CUSTOMER_SQL, ABANDONED_COLUMNS
from bedrock_billing.core.timeutil import FixedClock
from bedrock_billing.services.usage_reports import reconcile, usage_report
from bedrock_billing.stores.athena import AthenaLogStore, trino_literal
from bedrock_billing.stores.localsql import LocalLogStore, LocalSqlEngine
from bedrock_billing.stores.logsink import LocalLogSink
from bedrock_billing.stores.usage_counters import CounterStore
from tests.usage_helpers import NAMES, generate, seed_dynamodb, write_local_log

FIRST, LAST = date(2026, 10, 1), date(2026, 10, 31)
CLOCK = FixedClock("2026-11-02T08:00:00Z")
MODEL = "amazon.nova-lite-v1:0"


@pytest.fixture
def env(moto_session, tmp_path):
    gen = generate(seed=5)
    ddb = moto_session.client("dynamodb")
    seed_dynamodb(gen, ddb)
    write_local_log(gen, tmp_path)
    return gen, CounterStore(ddb, NAMES.usage), LocalLogStore(tmp_path), tmp_path


def _ids(gen):
    return [*gen.customers, gen.idle_customer]


def _admitted(request_id: str, customer_id: str, at: str, **extra) -> dict:
    return {
        "timestamp": at,
        "event_type": "proxy_admitted",
        "request_id": request_id,
        "customer_id": customer_id,
        "model_id": "us." + MODEL,
        "foundation_model": MODEL,
        "api": "converse",
        "streamed": True,
        "wire_api": "openai-chat",
        "request_bytes": 5120,
        "max_tokens": 4096,
        **extra,
    }


def _outcome(request_id: str, customer_id: str, at: str, event: str = "bedrock_error") -> dict:
    # An error outcome: it pairs the admission, and the seeded counters need no change
    # beyond one error (the tests that use it plant that error in the counters too).
    return {
        "timestamp": at,
        "event_type": event,
        "request_id": request_id,
        "customer_id": customer_id,
        "foundation_model": MODEL,
        "status": 502,
    }


def _write(root, arrival: str, line: dict) -> None:
    LocalLogSink(root, clock=FixedClock(arrival)).write(line)


def test_an_admission_without_an_outcome_is_reported_abandoned_with_what_it_knew(env):
    gen, counters, log, root = env
    cid = gen.customers[1]
    _write(root, "2026-10-20T10:00:01Z", _admitted("req-lost", cid, "2026-10-20T10:00:00.000Z"))
    report = reconcile(counters, log, _ids(gen), FIRST, LAST, clock=CLOCK)
    assert report.differences == []  # admission lines are not usage: the counters agree
    assert report.exit_code == 5
    (lost,) = report.abandoned
    assert lost.to_dict() == {
        "request_id": "req-lost",
        "customer_id": cid,
        "admitted_at": "2026-10-20T10:00:00.000Z",
        "model": MODEL,
        "wire_api": "openai-chat",
        "api": "converse",
        "streamed": True,
        "request_bytes": 5120,
        "max_tokens": 4096,
        "reason": "abandoned: AWS may have billed it",
    }
    data = report.to_dict()
    assert data["abandoned"] == [lost.to_dict()] and data["totals"]["abandoned"] == 1
    # Another customer's reconcile does not see it.
    other = reconcile(
        counters, log, [gen.customers[0]], FIRST, LAST, all_customers=False, clock=CLOCK
    )
    assert other.abandoned == []


def test_a_request_whose_lines_arrive_either_side_of_midnight_pairs(env, moto_session):
    gen, counters, log, root = env
    cid = gen.idle_customer
    # Admitted at 23:59:59 on the 31st (the range's last day): the admission line lands in
    # dt=2026-10-31, its outcome (a long stream) in dt=2026-11-01.
    _write(root, "2026-10-31T23:59:59Z", _admitted("req-late", cid, "2026-10-31T23:59:59.5Z"))
    _write(root, "2026-11-01T00:14:00Z", _outcome("req-late", cid, "2026-10-31T23:59:59.5Z"))
    # ... and one admitted at midnight exactly, a day before the range: not in it at all.
    _write(root, "2026-09-30T23:59:59Z", _admitted("req-early", cid, "2026-09-30T23:59:59Z"))
    _write(root, "2026-10-01T00:05:00Z", _outcome("req-early", cid, "2026-09-30T23:59:59Z"))
    moto_session.client("dynamodb").update_item(
        TableName=NAMES.usage,
        Key={"customer_id": {"S": cid}, "sk": {"S": f"DAY#2026-10-31#{MODEL}"}},
        UpdateExpression="ADD errors :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    for first, last in ((FIRST, LAST), (LAST, LAST), (date(2026, 9, 30), date(2026, 9, 30))):
        report = reconcile(counters, log, _ids(gen), first, last, clock=CLOCK)
        assert report.abandoned == [], (first, last)
    assert reconcile(counters, log, _ids(gen), FIRST, LAST, clock=CLOCK).exit_code == 0


def test_admission_lines_are_never_counted_as_usage(env):
    gen, counters, log, root = env
    before = usage_report(log, _ids(gen), FIRST, LAST, all_customers=True, clock=CLOCK)
    for n, cid in enumerate(gen.customers):
        at = f"2026-10-1{n}T09:00:00Z"
        _write(root, at, _admitted(f"req-{n}", cid, at))
    after = usage_report(log, _ids(gen), FIRST, LAST, all_customers=True, clock=CLOCK)
    assert after.totals == before.totals and after.customer_totals == before.customer_totals


def test_athena_runs_the_same_pairing_query_with_parameters(moto_session, tmp_path):
    cid = "7d1f2c3e-1111-4222-8333-444455556666"
    _write(tmp_path, "2026-10-20T10:00:01Z", _admitted("req-lost", cid, "2026-10-20T10:00:00Z"))
    local = LocalLogStore(tmp_path)
    expected = local.read_abandoned(FIRST, LAST, [cid])
    sql, params = local.last_engine.executed[-1]
    assert sql == ABANDONED_BY_CUSTOMER_SQL
    # Outcomes scanned a day wider than the admissions, on each side.
    assert params == [
        "2026-09-29", "2026-11-02", "2026-09-30", "2026-11-01", "2026-10-01", "2026-10-31", cid,
    ]  # fmt: skip
    records = LocalSqlEngine(tmp_path).query(sql, params)
    info = [{"Name": c, "Type": "varchar"} for c in ABANDONED_COLUMNS]
    data = [{"Data": [{"VarCharValue": c} for c in ABANDONED_COLUMNS]}]
    data += [
        {"Data": [{"VarCharValue": None if v is None else str(v).lower() if isinstance(v, bool)
                   else str(v)} for v in row]}
        for row in records
    ]  # fmt: skip
    athena_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].query_results_queue.append(
        QueryResults(data, info)
    )
    moto_session.client("s3").create_bucket(Bucket="athena-results")
    sent: list[dict] = []
    moto_session.events.register(
        "before-parameter-build.athena.StartQueryExecution", lambda params, **_: sent.append(params)
    )
    store = AthenaLogStore(
        session=moto_session, results_location="s3://athena-results/q/", poll_interval=0
    )
    got = store.read_abandoned(FIRST, LAST, [cid])
    assert got == expected and len(got) == 1
    assert sent[0]["QueryString"] == sql
    assert sent[0]["ExecutionParameters"] == [trino_literal(p) for p in params]
