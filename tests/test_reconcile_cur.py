"""``reconcile --against cur``: a generated month of proxy log lines against a CUR 2.0
export (Parquet, read by DuckDB with the SQL text Athena runs). Clean when AWS billed what
the book says; a planted price change and an unpriced 1-hour cache-write usage type are
each found and explained by the price-book entry; an open bill exits 6."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from bedrock_billing.core.billedusage import USAGE_BY_TYPE_COLUMNS, cur_query, usage_by_type_query
from bedrock_billing.core.errors import EXIT_DIFFERENCES, EXIT_NOT_FINAL, EXIT_OK
from bedrock_billing.core.logschema import FIELD_NAMES
from bedrock_billing.core.pricing import parse_price_book
from bedrock_billing.core.pricing.billcheck import line_items_for
from bedrock_billing.core.timeutil import FixedClock, Period, iter_days
from bedrock_billing.services.usage_reports import reconcile_against_cur
from bedrock_billing.stores.athena import AthenaLogStore
from bedrock_billing.stores.cur import AthenaCurStore, LocalCurStore, write_cur_parquet
from bedrock_billing.stores.localsql import LocalLogStore

PERIOD = Period.parse("2026-06")
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET4 = "anthropic.claude-sonnet-4-20250514-v1:0"
CUSTOMER = "2f1c2b8e-5d0a-4c59-9b8e-0d6f3a1e7c11"

BOOK = """
[costs."anthropic.claude-sonnet-4-20250514-v1:0"]
input = "0.000003"
output = "0.000015"
cache_read = "0.0000003"
cache_write = "0.00000375"
cache_write_1h = "0.000006"
[costs."anthropic.claude-sonnet-4-20250514-v1:0".variants.priority]
input = "0.00000525"
output = "0.00002625"
"""
# AWS's own book: Haiku's input price changed on 15 June, which the operator's book missed.
AWS_BOOK = BOOK + """
[[costs."anthropic.claude-3-haiku-20240307-v1:0"]]
input = "0.00000025"
output = "0.00000125"
[[costs."anthropic.claude-3-haiku-20240307-v1:0"]]
from = 2026-06-15
input = "0.0000003"
output = "0.00000125"
"""
# The operator's book without the 1-hour cache-write price of Sonnet 4.
NO_1H_BOOK = BOOK.replace('cache_write_1h = "0.000006"\n', "")


def log_line(at: datetime, model_id: str, model: str, counts, tier=None, scope="in_region"):
    inp, out, read, write, write_1h = counts
    line = dict.fromkeys(FIELD_NAMES)
    line.update(
        timestamp=at.strftime("%Y-%m-%dT%H:%M:%SZ"), event_type="bedrock_invoke",
        request_id=f"r-{random.random()}", customer_id=CUSTOMER, model_id=model_id,
        foundation_model=model, api="invoke", streamed=False, status=200,
        input_tokens=inp, output_tokens=out, cache_read_input_tokens=read,
        cache_write_input_tokens=write, cache_write_1h_input_tokens=write_1h,
        token_count=inp + out + read + write, usage_estimated=False, service_tier=tier,
        inference_scope=scope,
    )  # fmt: skip
    return line


@pytest.fixture
def month(tmp_path):
    """A month of traffic: Haiku on demand, Sonnet 4 global with priority requests and
    5-minute and 1-hour cache writes; a line per request, in the log's dt= layout."""
    rng = random.Random(7)
    root = tmp_path / "logs"
    for day in iter_days(PERIOD.first_day, PERIOD.last_day):
        lines = []
        for hour in range(0, 24, 6):
            at = datetime(day.year, day.month, day.day, hour, 5, tzinfo=UTC)
            counts = (rng.randint(100_000, 900_000), rng.randint(10, 30_000), 0, 0, 0)
            lines.append(log_line(at, HAIKU, HAIKU, counts))
            write = rng.randint(1000, 3000)
            counts = (rng.randint(100, 900), rng.randint(10, 300), rng.randint(0, 2000), write,
                      write // 2 if hour == 12 else 0)  # fmt: skip
            lines.append(log_line(at, "global." + SONNET4, SONNET4, counts, None, "global"))
            counts = (rng.randint(100, 900), rng.randint(10, 300), 0, 0, 0)
            tier = "priority" if hour == 18 else "default"
            lines.append(log_line(at, SONNET4, SONNET4, counts, tier))
        folder = root / f"dt={day.isoformat()}"
        folder.mkdir(parents=True)
        text = "\n".join(json.dumps(line) for line in lines) + "\n"
        (folder / "part.jsonl").write_text(text)
    return LocalLogStore(root)


def proxy_rows(log):
    sql, params = usage_by_type_query(PERIOD.first_day, PERIOD.last_day)
    return [dict(zip(USAGE_BY_TYPE_COLUMNS, r, strict=True))
            for r in log.query_range(PERIOD.first_day, PERIOD.last_day, sql, params)]  # fmt: skip


def bill(tmp_path, log, aws_book: str, *, final=True, extra=(), fmt="parquet"):
    items = line_items_for(parse_price_book(aws_book), PERIOD, proxy_rows(log), final=final)
    root = tmp_path / "cur"
    name = "part-0.parquet" if fmt == "parquet" else "part-0.csv.gz"
    write_cur_parquet(root / f"BILLING_PERIOD={PERIOD}" / name, [*items, *extra], fmt)
    return LocalCurStore(root)


def run(log, cur, book: str):
    clock = FixedClock("2026-07-05T00:00:00Z")
    return reconcile_against_cur(log, cur, parse_price_book(book), PERIOD, clock=clock)


def test_a_bill_the_book_explains_is_clean(tmp_path, month):
    report = run(month, bill(tmp_path, month, BOOK), BOOK)
    data = report.to_dict()
    assert data["differences"] == [] and report.exit_code == EXIT_OK
    assert data["final"] is True
    rows = {(r["model"], r["usage_type"], r["token_type"]): r for r in data["rows"]}
    assert rows[(SONNET4, "global", "cache_write_1h")]["aws_tokens"] > 0
    assert rows[(SONNET4, "priority", "input")]["aws_cost"] != "0"
    assert Decimal(data["totals"]["aws_cost"]) == Decimal(data["totals"]["book_cost_of_aws_usage"])
    for row in data["rows"]:
        assert row["proxy_tokens"] == row["aws_tokens"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_price_change_the_book_missed_is_found_from_its_day(tmp_path, month, fmt):
    report = run(month, bill(tmp_path, month, AWS_BOOK, fmt=fmt), BOOK)
    (finding,) = report.to_dict()["differences"]
    assert report.exit_code == EXIT_DIFFERENCES
    assert (finding["kind"], finding["model"], finding["token_type"]) == ("price", HAIKU, "input")
    assert "2026-06-15 to 2026-06-30" in finding["detail"] and "0.0000003" in finding["detail"]
    assert finding["price_book_entry"].startswith(f"models.'{HAIKU}'")
    assert Decimal(finding["amount"]) > 0


def test_an_unpriced_one_hour_cache_write_type_is_named(tmp_path, month):
    report = run(month, bill(tmp_path, month, BOOK), NO_1H_BOOK)
    (finding,) = report.to_dict()["differences"]
    assert (finding["kind"], finding["usage_type"], finding["token_type"]) == (
        "unpriced", "global", "cache_write_1h")
    assert "cache_write_1h" in finding["price_book_entry"]
    assert report.exit_code == EXIT_DIFFERENCES


def test_usage_aws_billed_that_the_proxy_never_recorded(tmp_path, month):
    lost = line_items_for(parse_price_book(BOOK), PERIOD, [{
        "day": "2026-06-20", "model": HAIKU, "service_tier": "default",
        "inference_scope": "in_region", "input_tokens": 5000, "output_tokens": 700,
        "cache_read_input_tokens": 0, "cache_write_5m_input_tokens": 0,
        "cache_write_1h_input_tokens": 0}], final=True)  # fmt: skip
    report = run(month, bill(tmp_path, month, BOOK, extra=lost), BOOK)
    kinds = {(f["kind"], f["token_type"]) for f in report.to_dict()["differences"]}
    assert kinds == {("tokens", "input"), ("tokens", "output")}
    assert "did not record" in report.to_dict()["differences"][0]["detail"]


def test_an_open_bill_exits_6_with_a_warning(tmp_path, month):
    report = run(month, bill(tmp_path, month, BOOK, final=False), BOOK)
    assert report.exit_code == EXIT_NOT_FINAL and not report.to_dict()["differences"]
    assert "refresh the CUR at least once a day" in report.warnings[0]
    empty = run(month, LocalCurStore(tmp_path / "nothing"), BOOK)
    assert empty.exit_code == EXIT_NOT_FINAL and "24 to 48 hours" in empty.warnings[0]


class RecordingAthena:
    """Stands in for pyathena: records the SQL and literals Athena would receive."""

    engine = "athena"

    def __init__(self):
        self.sent = []

    def execute(self, sql, params, progress=None):
        self.sent.append((sql, list(params)))
        return []


def test_the_same_sql_text_and_parameters_run_on_duckdb_and_go_to_athena(tmp_path, month):
    cur = bill(tmp_path, month, BOOK)
    run(month, cur, BOOK)
    athena = RecordingAthena()
    AthenaCurStore(athena, "cur_bedrock").read_period(PERIOD)
    assert athena.sent == cur.executed == [cur_query(PERIOD)]
    log_sql = usage_by_type_query(PERIOD.first_day, PERIOD.last_day)
    assert month.last_engine.executed == [log_sql]
    store = AthenaLogStore(workgroup="wg", connect=lambda **_: None)
    store.execute = lambda sql, params, progress=None: athena.sent.append((sql, params)) or []
    store.query_range(PERIOD.first_day, PERIOD.last_day, *log_sql)
    assert athena.sent[-1] == log_sql


def test_the_cur_table_name_is_checked_not_trusted():
    with pytest.raises(ValueError):
        cur_query(PERIOD, "cur; DROP TABLE x")
    assert date(2026, 6, 30) - PERIOD.first_day == timedelta(days=29)
