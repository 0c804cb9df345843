"""Pure usage arithmetic: grouping, totals, daily series, comparison, id validation."""

from __future__ import annotations

from datetime import date

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.usage import (
    UsageRow,
    compare_rows,
    daily_series,
    group_rows,
    merge_rows,
    parse_group_by,
    totals,
    validate_customer_id,
)

D1, D2, D3 = date(2026, 9, 30), date(2026, 10, 1), date(2026, 10, 2)
ROWS = [
    UsageRow(D1, "m1", 2, 100, 10, 5, 1, refused=1),
    UsageRow(D2, "m1", 1, 50, 5),
    UsageRow(D2, "m2", 3, 30, 3, errors=2, estimated=1),
]


def test_usage_row_keeps_the_shared_field_order():
    # The pricing branch's UsageRow has these first seven fields in this order.
    assert list(UsageRow.__dataclass_fields__)[:7] == [
        "day", "model", "requests", "input_tokens", "output_tokens",
        "cache_read_input_tokens", "cache_write_input_tokens",
    ]  # fmt: skip
    assert UsageRow(D1, "m", 1, 2, 3).total_tokens == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [("day", "day"), ("model", "model"), ("model,day", "day,model"), (" Day , Model", "day,model"),
     ("none", "none"), (None, "day,model")],
)  # fmt: skip
def test_group_by_is_normalised(text, expected):
    assert parse_group_by(text) == expected


@pytest.mark.parametrize("text", ["week", "day,day", "day,model,none", ""])
def test_bad_group_by_is_rejected(text):
    with pytest.raises(InvalidInput):
        parse_group_by(text or ",")


def test_grouping_by_day_model_and_none():
    by_day = group_rows("c", ROWS, "day")
    assert [(g.day, g.model, g.counts["requests"]) for g in by_day] == [
        (D1, None, 2),
        (D2, None, 4),
    ]
    by_model = group_rows("c", ROWS, "model")
    assert [(g.model, g.counts["input_tokens"]) for g in by_model] == [("m1", 150), ("m2", 30)]
    (one,) = group_rows("c", ROWS, "none")
    assert one.counts == totals(ROWS)
    assert one.to_dict()["total_tokens"] == 100 + 10 + 5 + 1 + 50 + 5 + 30 + 3


def test_a_customer_without_usage_has_one_zero_row_when_not_grouped():
    (row,) = group_rows("c", [], "none")
    assert row.counts["requests"] == 0
    assert group_rows("c", [], "day") == []


def test_daily_series_includes_days_without_usage():
    series = daily_series(ROWS, D1, D3)
    assert [d for d, _ in series] == [D1, D2, D3]
    assert series[2][1]["requests"] == 0
    assert series[1][1]["requests"] == 4


def test_merge_sums_split_rows_and_drops_zero_rows():
    merged = merge_rows(
        [UsageRow(D1, "m", 1, 1, 1), UsageRow(D1, "m", 2, 2, 2), UsageRow(D2, "m", 0, 0, 0)]
    )
    assert merged == [UsageRow(D1, "m", 3, 3, 3)]


def test_compare_finds_each_differing_counter_and_missing_rows():
    log = [UsageRow(D1, "m1", 2, 100, 10), UsageRow(D2, "m2", 1, 5, 5)]
    counters = [UsageRow(D1, "m1", 2, 90, 10)]
    diffs = compare_rows("c", counters, log)
    assert [(d.day, d.model, d.counter, d.difference) for d in diffs] == [
        (D1, "m1", "input_tokens", -10),
        (D2, "m2", "requests", -1),
        (D2, "m2", "input_tokens", -5),
        (D2, "m2", "output_tokens", -5),
    ]
    assert compare_rows("c", log, list(reversed(log))) == []


def test_customer_ids_must_be_uuids():
    good = "6F9619FF-8B86-D011-B42D-00C04FC964FF"
    assert validate_customer_id(good) == good.lower()
    for bad in ["x' OR '1'='1", "", "6f9619ff-8b86-d011-b42d-00c04fc964f", "a" * 36]:
        with pytest.raises(InvalidInput):
            validate_customer_id(bad)
