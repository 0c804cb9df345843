"""reconcile: counters against the log per customer, model and day; --repair from the log."""

from __future__ import annotations

from datetime import date

import pytest

from bedrock_billing.core.errors import Conflict
from bedrock_billing.core.schema import day_key
from bedrock_billing.core.timeutil import FixedClock, iso_z
from bedrock_billing.services.usage_reports import reconcile, repair_day
from bedrock_billing.stores.localsql import LocalLogStore
from bedrock_billing.stores.logsink import LocalLogSink
from bedrock_billing.stores.usage_counters import CounterStore
from tests.usage_helpers import (
    NAMES,
    CallCounter,
    generate,
    seed_dynamodb,
    write_local_log,
)

FIRST, LAST = date(2026, 10, 1), date(2026, 10, 31)
CLOCK = FixedClock("2026-11-02T08:00:00Z")


@pytest.fixture
def env(moto_session, tmp_path):
    gen = generate(seed=5)
    ddb = moto_session.client("dynamodb")
    seed_dynamodb(gen, ddb)
    write_local_log(gen, tmp_path)
    return gen, ddb, CounterStore(ddb, NAMES.usage), LocalLogStore(tmp_path), tmp_path


def _all_ids(gen):
    return [*gen.customers, gen.idle_customer]


def _busiest_key(gen):
    cid = gen.customers[0]
    (day, model), counts = max(
        ((k, v) for k, v in gen.expected[cid].items() if k[0] >= FIRST and v["requests"]),
        key=lambda kv: kv[1]["requests"],
    )
    return cid, day, model, counts


def test_matching_counters_and_log_have_no_difference(env):
    gen, _, counters, log, _ = env
    report = reconcile(counters, log, _all_ids(gen), FIRST, LAST, clock=CLOCK)
    assert report.differences == [] and report.exit_code == 0
    assert report.customers_checked == len(_all_ids(gen))
    assert report.counters_totals == report.log_totals
    assert report.to_dict()["totals"]["differences"] == 0


def test_a_difference_planted_in_the_counters_is_found(env):
    gen, ddb, counters, log, _ = env
    cid, day, model, counts = _busiest_key(gen)
    ddb.update_item(
        TableName=NAMES.usage,
        Key={"customer_id": {"S": cid}, "sk": {"S": day_key(day, model)}},
        UpdateExpression="ADD input_tokens :n",
        ExpressionAttributeValues={":n": {"N": "7"}},
    )
    report = reconcile(counters, log, _all_ids(gen), FIRST, LAST, clock=CLOCK)
    assert report.exit_code == 5
    (diff,) = report.differences
    assert (diff.customer_id, diff.day, diff.model, diff.counter) == (
        cid,
        day,
        model,
        "input_tokens",
    )
    assert (diff.counters_value, diff.log_value, diff.difference) == (
        counts["input_tokens"] + 7,
        counts["input_tokens"],
        7,
    )
    assert report.to_dict()["rows"][0]["difference"] == 7


def test_a_lost_counter_write_planted_in_the_log_is_found(env):
    gen, _, counters, log, root = env
    cid = gen.idle_customer  # a customer with no counters at all
    sink = LocalLogSink(root, clock=FixedClock("2026-10-15T10:00:02Z"))
    line = {
        "timestamp": "2026-10-15T10:00:00.000Z",
        "event_type": "bedrock_invoke",
        "customer_id": cid,
        "foundation_model": "amazon.nova-lite-v1:0",
        "input_tokens": 10,
        "output_tokens": 4,
        "counter_write_failed": True,
    }
    sink.write(line)
    report = reconcile(counters, log, _all_ids(gen), FIRST, LAST, clock=CLOCK)
    assert report.exit_code == 5
    assert {
        (d.customer_id, d.counter, d.counters_value, d.log_value) for d in report.differences
    } == {
        (cid, "requests", 0, 1),
        (cid, "input_tokens", 0, 10),
        (cid, "output_tokens", 0, 4),
    }


def test_customers_only_in_the_log_are_checked_too(env):
    gen, _, counters, log, root = env
    stranger = "00000000-0000-4000-8000-000000000001"
    LocalLogSink(root, clock=FixedClock("2026-10-03T00:00:05Z")).write(
        {"timestamp": "2026-10-03T00:00:01Z", "event_type": "bedrock_error",
         "customer_id": stranger, "foundation_model": "m"}
    )  # fmt: skip
    report = reconcile(counters, log, gen.customers, FIRST, LAST, clock=CLOCK)
    assert [(d.customer_id, d.counter) for d in report.differences] == [(stranger, "errors")]


def test_repair_rebuilds_a_past_day_from_the_log_once_confirmed(env):
    gen, ddb, counters, log, _ = env
    cid, day, model, counts = _busiest_key(gen)
    key = {"customer_id": {"S": cid}, "sk": {"S": day_key(day, model)}}
    ddb.delete_item(TableName=NAMES.usage, Key=key)  # a counter write was lost
    ddb.put_item(  # and a stray item that the log does not support
        TableName=NAMES.usage,
        Item={"customer_id": {"S": cid}, "sk": {"S": day_key(day, "ghost-model")},
              "requests": {"N": "3"}},
    )  # fmt: skip
    seen = []
    declined = repair_day(
        counters, log, _all_ids(gen), day, confirm=lambda p: seen.append(p) or False, clock=CLOCK
    )
    assert not declined.applied and declined.writes == 0
    assert seen[0].customer_ids == [cid]
    assert "Item" not in ddb.get_item(TableName=NAMES.usage, Key=key)

    calls = CallCounter(ddb, "dynamodb")
    result = repair_day(counters, log, _all_ids(gen), day, confirm=lambda p: True, clock=CLOCK)
    assert result.applied and result.customers_repaired == [cid]
    assert calls.count("UpdateItem") >= 1 and calls.count("DeleteItem") == 1
    item = ddb.get_item(TableName=NAMES.usage, Key=key)["Item"]
    assert {n: int(item[n]["N"]) for n in counts} == counts
    assert item["repaired_at"]["S"] == iso_z(CLOCK())
    assert reconcile(counters, log, _all_ids(gen), day, day, clock=CLOCK).differences == []
    # Idempotent: a second run finds nothing to write.
    again = repair_day(counters, log, _all_ids(gen), day, confirm=lambda p: True, clock=CLOCK)
    assert not again.applied and again.writes == 0


def test_repair_rewrites_with_set_so_a_rerun_cannot_double_count(env):
    gen, ddb, counters, _, _ = env
    cid, day, model, counts = _busiest_key(gen)
    rows = counters.read_customer(cid, day, day)
    counters.replace_day(cid, day, rows, clock=CLOCK)
    counters.replace_day(cid, day, rows, clock=CLOCK)
    assert counters.read_customer(cid, day, day) == rows


def test_today_and_the_last_hour_of_yesterday_cannot_be_repaired(env):
    gen, _, counters, log, _ = env
    with pytest.raises(Conflict, match="not a past day"):
        repair_day(counters, log, gen.customers, date(2026, 11, 2), confirm=lambda p: True,
                   clock=CLOCK)  # fmt: skip
    early = FixedClock("2026-11-02T00:30:00Z")
    with pytest.raises(Conflict):
        repair_day(counters, log, gen.customers, date(2026, 11, 1), confirm=lambda p: True,
                   clock=early)  # fmt: skip


def test_reconciling_a_range_with_today_warns_about_lines_in_transit(env):
    gen, _, counters, log, _ = env
    report = reconcile(counters, log, gen.customers, FIRST, date(2026, 11, 2), clock=CLOCK)
    assert report.warnings and "in transit" in report.warnings[0]
