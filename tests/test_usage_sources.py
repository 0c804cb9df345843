"""The counters and the log, read through the local engine, give the same usage."""

from __future__ import annotations

from datetime import date

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.timeutil import FixedClock
from bedrock_billing.core.usage import totals
from bedrock_billing.services.usage_reports import usage_report
from bedrock_billing.services.usage_sources import open_log_store
from bedrock_billing.stores.localsql import LocalLogStore
from bedrock_billing.stores.logsink import SANDBOX_MARKER_KEY, write_sandbox_marker
from bedrock_billing.stores.usage_counters import CounterStore, scan_customer_ids
from bedrock_billing.stores.usagelog import LogConfig
from tests.usage_helpers import (
    NAMES,
    CallCounter,
    generate,
    seed_dynamodb,
    write_local_log,
    write_s3_log,
)

FIRST, LAST = date(2026, 9, 27), date(2026, 10, 4)
CLOCK = FixedClock("2026-11-02T08:00:00Z")


@pytest.fixture(scope="module")
def gen():
    return generate()


@pytest.fixture
def aws(moto_session):
    return moto_session


@pytest.fixture
def counters(aws, gen):
    ddb = aws.client("dynamodb")
    seed_dynamodb(gen, ddb)
    return CounterStore(ddb, NAMES.usage)


@pytest.fixture
def local_log(tmp_path, gen):
    write_local_log(gen, tmp_path)
    return LocalLogStore(tmp_path)


def test_the_generated_usage_has_the_cases_we_need(gen, tmp_path):
    days = {d for slots in gen.expected.values() for d, _ in slots}
    assert date(2026, 9, 29) not in days  # a day with no usage
    assert {date(2026, 9, 30), date(2026, 10, 1)} <= days  # a month boundary
    assert gen.idle_customer not in gen.expected  # a customer with no usage at all
    late = [
        line for arrival, line in gen.lines if arrival.date().isoformat() != line["timestamp"][:10]
    ]
    assert late, "some lines must arrive in the next day's partition"
    uncounted = [line for _, line in gen.lines if line.get("error_code") == "service_unavailable"]
    assert uncounted and all(line["customer_id"] for line in uncounted)
    write_local_log(gen, tmp_path)
    assert (tmp_path / "dt=2026-10-05").is_dir()  # the last day's late lines


def test_counters_and_log_give_the_same_rows_per_customer(gen, counters, local_log):
    ids = [*gen.customers, gen.idle_customer]
    from_counters = counters.read_usage(FIRST, LAST, ids)
    from_log = local_log.read_usage(FIRST, LAST, ids)
    for cid in ids:
        expected = gen.expected_rows(cid, FIRST, LAST)
        assert sorted(from_counters[cid], key=lambda r: (r.day, r.model)) == expected
        assert from_log.get(cid, []) == expected
    assert from_counters[gen.idle_customer] == []


def test_reports_from_both_sources_agree_on_totals_and_days(gen, counters, local_log):
    ids = [*gen.customers, gen.idle_customer]
    a = usage_report(counters, ids, FIRST, LAST, all_customers=True, clock=CLOCK)
    b = usage_report(local_log, ids, FIRST, LAST, all_customers=True, clock=CLOCK)
    assert a.totals == b.totals
    assert a.totals["requests"] > 0 and a.totals["refused"] > 0 and a.totals["errors"] > 0
    assert a.daily == b.daily
    assert a.customer_totals == b.customer_totals
    assert a.customer_totals[gen.idle_customer]["requests"] == 0
    assert [row.to_dict() for row in a.rows] == [row.to_dict() for row in b.rows]
    assert (a.source, b.source) == ("dynamodb", "local")
    zero_day = dict(a.daily)[date(2026, 9, 29)]
    assert set(zero_day.values()) == {0}


def test_a_month_is_read_with_its_own_days_only(gen, counters, local_log):
    october = (date(2026, 10, 1), date(2026, 10, 31))
    cid = gen.customers[0]
    expected = totals(gen.expected_rows(cid, *october))
    assert usage_report(counters, [cid], *october, clock=CLOCK).totals == expected
    assert usage_report(local_log, [cid], *october, clock=CLOCK).totals == expected
    # Lines of 30 September that arrived on 1 October stay in September.
    september = usage_report(local_log, [cid], date(2026, 9, 1), date(2026, 9, 30), clock=CLOCK)
    assert september.totals == totals(gen.expected_rows(cid, date(2026, 9, 1), date(2026, 9, 30)))


def test_json_shape_is_integers_under_rows_and_totals(gen, local_log):
    report = usage_report(local_log, [gen.customers[0]], FIRST, LAST, group_by="model", clock=CLOCK)
    data = report.to_dict()
    assert set(data) >= {"source", "start_date", "end_date", "group_by", "generated_at", "rows",
                         "customers", "daily", "totals", "warnings"}  # fmt: skip
    assert data["generated_at"] == "2026-11-02T08:00:00Z"
    assert data["rows"][0]["day"] is None and data["rows"][0]["model"]
    for value in data["totals"].values():
        assert type(value) is int
    assert len(data["daily"]) == (LAST - FIRST).days + 1


def test_a_hostile_customer_id_changes_nothing_in_the_local_answer(gen, local_log):
    hostile = "x' OR '1'='1"
    assert local_log.read_usage(FIRST, LAST, [hostile]) == {}
    sql, params = local_log.last_engine.executed[-1]
    assert params[-1] == hostile and hostile not in sql
    with pytest.raises(InvalidInput, match="UUID"):
        usage_report(local_log, [hostile], FIRST, LAST, clock=CLOCK)


def test_a_period_is_one_query_per_customer_with_a_progress_bar(aws, gen):
    ddb = aws.client("dynamodb")
    seed_dynamodb(generate(seed=3, customers=30), ddb)
    ids = scan_customer_ids(ddb, NAMES.customers)
    assert len(ids) == 31
    calls = CallCounter(ddb, "dynamodb")
    ticks = []
    report = usage_report(
        CounterStore(ddb, NAMES.usage),
        ids,
        date(2026, 9, 1),
        date(2026, 10, 31),
        all_customers=True,
        clock=CLOCK,
        progress=lambda done, total, msg: ticks.append((done, total)),
    )
    assert calls.count() == calls.count("Query") == 31
    assert ticks[0] == (0, 31) and ticks[-1] == (31, 31) and len(ticks) == 32
    assert report.totals["requests"] > 0


def test_pagination_reads_every_item_of_a_customer(aws, gen, counters):
    ddb = aws.client("dynamodb")
    cid = max(gen.expected, key=lambda c: len(gen.expected[c]))
    small = CounterStore(ddb, NAMES.usage, page_size=2)
    calls = CallCounter(ddb, "dynamodb")
    rows = small.read_customer(cid, FIRST, LAST)
    assert sorted(rows, key=lambda r: (r.day, r.model)) == gen.expected_rows(cid, FIRST, LAST)
    # AWS sends a last, empty page when the limit ends on the last item; moto does not.
    assert calls.count("Query") in (-(-len(rows) // 2), len(rows) // 2 + 1)
    assert calls.count("Query") > 1


def test_the_sandbox_marker_switches_to_the_local_engine_over_s3(aws, gen):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="logs-bucket")
    write_s3_log(gen, s3, "logs-bucket", "logs/")
    config = LogConfig(bucket="logs-bucket", prefix="logs/", workgroup="wg")
    assert open_log_store(aws, config).engine == "athena"  # no marker: a deployment
    write_sandbox_marker(s3, "logs-bucket", clock=CLOCK)
    assert s3.get_object(Bucket="logs-bucket", Key=SANDBOX_MARKER_KEY)
    store = open_log_store(aws, config)
    assert store.engine == "local"
    october = (date(2026, 10, 1), date(2026, 10, 31))
    got = store.read_usage(*october, None)
    for cid in gen.customers:
        assert got.get(cid, []) == gen.expected_rows(cid, *october)
    assert store.copied_objects > 0


def test_the_engine_can_be_forced_and_a_bad_one_is_refused(aws):
    aws.client("s3").create_bucket(Bucket="bb-logs")
    assert open_log_store(aws, LogConfig(bucket="bb-logs", engine="local")).engine == "local"
    with pytest.raises(InvalidInput):
        open_log_store(aws, LogConfig(bucket="bb-logs", engine="presto"))
