"""The log schema is written once: the Glue table, the DuckDB view and the SQL agree."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest

from bedrock_billing.core import logschema
from bedrock_billing.core.logschema import (
    FIELD_NAMES,
    USAGE_ALL_CUSTOMERS_SQL,
    USAGE_BY_CUSTOMER_SQL,
    duckdb_view_sql,
    glue_table_input,
    partition_range,
    usage_query,
)
from bedrock_billing.stores.logsink import serialize_line

GLUE_TO_DUCKDB = {"string": "VARCHAR", "boolean": "BOOLEAN", "int": "INTEGER", "bigint": "BIGINT"}


def _view_columns(tmp_path) -> list[tuple[str, str]]:
    folder = tmp_path / "dt=2026-10-01"
    folder.mkdir()
    (folder / "a.jsonl").write_text(json.dumps({"timestamp": "2026-10-01T00:00:00Z"}) + "\n")
    con = duckdb.connect()
    con.execute(duckdb_view_sql(str(tmp_path / "dt=*" / "*")))
    return [(r[0], r[1]) for r in con.execute("DESCRIBE usage_log").fetchall()]


def test_duckdb_view_has_the_glue_columns_and_partition_in_order(tmp_path):
    table = glue_table_input("s3://bucket/logs")
    glue = [(c["Name"], GLUE_TO_DUCKDB[c["Type"]]) for c in table["StorageDescriptor"]["Columns"]]
    glue += [(k["Name"], GLUE_TO_DUCKDB[k["Type"]]) for k in table["PartitionKeys"]]
    assert _view_columns(tmp_path) == glue


def test_glue_table_projects_dt_partitions_from_the_location():
    table = glue_table_input("s3://bucket/logs")
    params = table["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.dt.type"] == "date"
    assert params["projection.dt.format"] == "yyyy-MM-dd"
    assert params["storage.location.template"] == "s3://bucket/logs/dt=${dt}/"
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == logschema.JSON_SERDE
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == list(FIELD_NAMES)


def test_every_column_the_queries_read_is_in_the_schema():
    for name in ("timestamp", "event_type", "customer_id", "foundation_model", "usage_estimated",
                 "input_tokens", "output_tokens", "cache_read_input_tokens",
                 "cache_write_input_tokens"):  # fmt: skip
        assert name in FIELD_NAMES
        assert name in USAGE_BY_CUSTOMER_SQL


def test_queries_take_every_value_as_a_marker_and_divide_nothing():
    sql, params = usage_query(date(2026, 10, 1), date(2026, 10, 31), "c")
    assert sql is USAGE_BY_CUSTOMER_SQL
    assert sql.count("?") == len(params) == 5
    sql_all, params_all = usage_query(date(2026, 10, 1), date(2026, 10, 31))
    assert sql_all is USAGE_ALL_CUSTOMERS_SQL
    assert sql_all.count("?") == len(params_all) == 4
    for text in (sql, sql_all):
        assert "/" not in text and "%" not in text and "2026" not in text


def test_partition_range_is_widened_by_a_day_on_each_side():
    assert partition_range(date(2026, 10, 1), date(2026, 10, 31)) == ("2026-09-30", "2026-11-01")
    assert usage_query(date(2026, 12, 31), date(2026, 12, 31))[1] == [
        "2026-12-30",
        "2027-01-01",
        "2026-12-31",
        "2026-12-31",
    ]


def test_log_line_is_serialised_in_schema_order_with_nulls():
    text = serialize_line({"event_type": "bedrock_invoke", "timestamp": "2026-10-01T00:00:00Z"})
    data = json.loads(text)
    assert list(data) == list(FIELD_NAMES)
    assert data["customer_id"] is None
    with pytest.raises(ValueError, match="outside the schema"):
        serialize_line({"prompt": "secret"})


def test_counted_refusals_are_the_proxy_refusals_raised_at_a_limit_or_model_check():
    from bedrock_billing.proxy import errors as E

    assert set(logschema.COUNTED_REFUSAL_CODES) == {
        E.MODEL_NOT_ALLOWED, E.MODEL_NOT_PRICED, E.DAILY_LIMIT, E.MINUTE_LIMIT, E.TOKEN_LIMIT,
        E.BUDGET_LIMIT, E.KEY_DAILY_LIMIT,
    }  # fmt: skip
    for code in logschema.COUNTED_REFUSAL_CODES:
        assert f"'{code}'" in USAGE_BY_CUSTOMER_SQL
