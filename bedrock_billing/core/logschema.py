"""The per-request usage log line: its schema, written once.

The proxy writes one JSON object per request with exactly these fields (``None`` for a
field that does not apply). The Glue table (deploy), the local engine's view (DuckDB) and
the Athena queries are all derived from ``FIELDS``; a test checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

# Event types
EVENT_INVOKE = "bedrock_invoke"  # Bedrock answered with success: billable
EVENT_ERROR = "bedrock_error"  # admitted, but Bedrock (or the proxy) failed: not billed
EVENT_REFUSED = "proxy_refused"  # refused by the proxy (auth, limit, bad input): not billed
EVENT_TEST = "test_invoke"  # a test key's request, answered by the test responder: not billed
# Written at admission, before the Bedrock call: never usage by itself. reconcile pairs it
# with the request's outcome line by request_id (core/admissions.py).
EVENT_ADMITTED = "proxy_admitted"

# The CloudWatch metric the proxy emits for a lost counter write (Embedded Metric Format),
# and the deploy's alarm watches: one contract, so both sides name it from here.
METRIC_NAMESPACE = "BedrockBilling"
METRIC_WRITE_FAILURES = "UsageWriteFailures"

# The refusals the proxy counts in the DAY# item's ``refused`` counter: those at a limit or
# model check (proxy/errors.py codes raised with ``limit=``). Other refusals (bad input,
# bad token, a DynamoDB outage at admission) are logged but counted for no one.
COUNTED_REFUSAL_CODES: tuple[str, ...] = (
    "model_not_allowed",
    "model_not_priced",
    "daily_request_limit_exceeded",
    "requests_per_minute_exceeded",
    "monthly_token_limit_exceeded",
    "monthly_budget_exceeded",
    "key_daily_request_limit_exceeded",
)

# Security events (counted per source address in the container, never written to DynamoDB):
# the log line's ``security_events``; the stack alarms when one address reaches the threshold
# within one container's five-minute window.
SECURITY_EVENT_CODES: tuple[str, ...] = (
    "invalid_token",
    "token_revoked",
    "token_expired",
    "token_grace_expired",
    "ip_not_allowed",
)
SECURITY_METRIC = "SecurityEventBursts"
SECURITY_ALARM_THRESHOLD = 20

UNKNOWN_MODEL = "unknown"  # the model of a refused/failed line without a foundation model
# The model id logged for a request whose model id is not a Bedrock model id: what was
# sent is never written anywhere (it may be a secret pasted in the wrong place).
INVALID_MODEL = "invalid-model-id"
LOG_PARTITION_KEY = "dt"  # S3 layout: <prefix>/dt=YYYY-MM-DD/<file>.jsonl (arrival date)


@dataclass(frozen=True)
class Field:
    name: str
    athena_type: str  # Athena/Hive DDL type; DuckDB's is derived from it
    doc: str


FIELDS: tuple[Field, ...] = (
    Field("timestamp", "string", "ISO 8601 UTC instant of admission, with Z"),
    Field(
        "event_type", "string", "bedrock_invoke | bedrock_error | proxy_refused | proxy_admitted"
    ),
    Field("request_id", "string", "the proxy's request id (API Gateway's, or generated)"),
    Field("customer_id", "string", "customer UUID; null when the token was not recognised"),
    Field("model_id", "string", "the model id as the client sent it"),
    Field("foundation_model", "string", "the normalised foundation model id (pricing, limits)"),
    Field("api", "string", "the operation: invoke | converse"),
    Field("streamed", "boolean", "true when served with a response stream"),
    Field("status", "int", "HTTP status returned to the client"),
    Field("error_code", "string", "the proxy's error code, null on success"),
    Field("input_tokens", "bigint", "input tokens as reported by Bedrock"),
    Field("output_tokens", "bigint", "output tokens as reported by Bedrock"),
    Field("cache_read_input_tokens", "bigint", "prompt-cache read tokens"),
    Field("cache_write_input_tokens", "bigint", "prompt-cache write tokens"),
    Field(
        "cache_write_1h_input_tokens",
        "bigint",
        "of the cache writes, those with a 1-hour lifetime (the rest: 5 minutes)",
    ),
    Field("token_count", "bigint", "input + output + cache tokens"),
    Field("usage_estimated", "boolean", "true when Bedrock did not report the usage"),
    Field("duration_ms", "bigint", "time spent in the proxy, ms"),
    Field("bedrock_latency_ms", "bigint", "Bedrock's invocation latency when reported, ms"),
    Field("bedrock_request_id", "string", "Bedrock's x-amzn-requestid"),
    Field("service_tier", "string", "the service tier Bedrock served, when reported"),
    Field("inference_scope", "string", "in_region | geo (cross-Region profile) | global"),
    Field(
        "counter_write_failed", "boolean", "true when the DynamoDB counters could not be written"
    ),
    Field("near_timeout", "boolean", "true when the call used 90% of the time it was allowed"),
    Field(
        "wire_api",
        "string",
        "the API the client spoke: bedrock-runtime | anthropic-messages | openai-chat | legacy"
        " | portal (a refused portal request)",
    ),
    Field(
        "delivered",
        "boolean",
        "false when the client did not receive the whole answer; null when not admitted",
    ),
    Field("request_bytes", "bigint", "the request body's size in bytes (admitted requests)"),
    Field("max_tokens", "bigint", "the output-token cap the request set, when it set one"),
    Field(
        "repaired",
        "boolean",
        "true on a line booked by reconcile --repair from Bedrock's invocation log",
    ),
    Field("note", "string", "why a repaired line was booked, and when"),
    Field("key_id", "string", "the customer's key that made the request (never its token)"),
    Field("test_key", "boolean", "true for a test key's request (never billed)"),
    Field("source_ip", "string", "the caller's address as API Gateway reports it"),
    Field(
        "security_events",
        "bigint",
        "for a security event: this address's events in this container's 5-minute window",
    ),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)


# ---- Derived: the Glue/Athena table (deploy reuses it; the local engine's view matches it)

LOG_TABLE = "usage_log"
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"


def glue_columns() -> list[dict[str, str]]:
    """Glue ``Columns`` for the log table, in ``FIELDS`` order."""
    return [{"Name": f.name, "Type": f.athena_type, "Comment": f.doc} for f in FIELDS]


def projected_json_table(
    table: str, s3_location: str, columns: list[dict], *, dt_format: str, dt_start: str,
    dt_folder: str, partition: str = LOG_PARTITION_KEY,
) -> dict:
    """A Glue ``TableInput`` over JSON lines in S3 whose ``dt`` partitions Athena projects
    from the query's ``dt`` predicate (``projection.dt.*``): no crawler and no ``MSCK
    REPAIR`` to wait for. ``dt_folder`` is the key's folder template, e.g. ``dt=${dt}/``."""
    location = s3_location.rstrip("/") + "/"
    return {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "json",
            "projection.enabled": "true",
            "projection.dt.type": "date",
            "projection.dt.format": dt_format,
            "projection.dt.range": f"{dt_start},NOW",
            "projection.dt.interval": "1",
            "projection.dt.interval.unit": "DAYS",
            "storage.location.template": location + dt_folder,
        },
        "PartitionKeys": [{"Name": partition, "Type": "string"}],
        "StorageDescriptor": {
            "Columns": columns,
            "Location": location,
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {
                "SerializationLibrary": JSON_SERDE,
                "Parameters": {"ignore.malformed.json": "true"},
            },
        },
    }


def glue_table_input(s3_location: str, table: str = LOG_TABLE) -> dict:
    """The Glue ``TableInput`` for the usage log: JSON lines under ``dt=YYYY-MM-DD/``."""
    return projected_json_table(
        table, s3_location, glue_columns(),
        dt_format="yyyy-MM-dd", dt_start="2024-01-01", dt_folder="dt=${dt}/",
    )  # fmt: skip


# ---- Derived: the local engine's view (DuckDB), column for column the Glue table

DUCKDB_TYPES = {"string": "VARCHAR", "boolean": "BOOLEAN", "int": "INTEGER", "bigint": "BIGINT"}


def duckdb_columns() -> dict[str, str]:
    """DuckDB ``read_json`` columns for the log, in ``FIELDS`` order."""
    return {f.name: DUCKDB_TYPES[f.athena_type] for f in FIELDS}


def _duckdb_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_view_sql(files_glob: str, table: str = LOG_TABLE) -> str:
    """The DuckDB view named like the Athena table over ``<root>/dt=*/*`` JSON-lines files.

    Explicit columns (keys a line lacks read as NULL, keys it has beyond them are ignored,
    as the JSON SerDe does), ``dt`` from the folder name as VARCHAR like the Glue partition
    key, and malformed lines skipped as ``ignore.malformed.json`` does.
    """
    columns = ", ".join(
        f"{_duckdb_string(k)}: {_duckdb_string(v)}" for k, v in duckdb_columns().items()
    )
    return (
        f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_json("
        f"{_duckdb_string(files_glob)}, format = 'newline_delimited', columns = {{{columns}}}, "
        f"hive_partitioning = true, hive_types = {{'{LOG_PARTITION_KEY}': 'VARCHAR'}}, "
        "ignore_errors = true)"
    )


# ---- The usage queries: one SQL text for Athena and DuckDB (Trino dialect, ``?`` markers)
#
# A line's day is the first 10 characters of its own ``timestamp`` (always ISO 8601 UTC
# with Z, so this is its UTC date, and compares as text in both engines). ``dt`` is the
# arrival date, so the scan widens the dt range by a day on each side and the line's own
# day decides. Counting, per customer, day and foundation model:
#   bedrock_invoke -> requests + 1 and its tokens; estimated + 1 when usage_estimated
#   proxy_refused  -> refused + 1 when refused at a limit or model check (the codes above)
#   bedrock_error  -> errors + 1
# Lines without a customer (unrecognised token) count for nobody. No division anywhere:
# Trino's integer division truncates, DuckDB's does not.

_REFUSAL_CODES_SQL = ", ".join(f"'{code}'" for code in COUNTED_REFUSAL_CODES)

def billed_token_sums(indent: str = "  ") -> str:
    """The SELECT items summing the four token columns over billed lines only
    (``bedrock_invoke``), as every log query counts tokens; joined by ``,\n``."""
    return ",\n".join(
        f"{indent}sum(CASE WHEN event_type = '{EVENT_INVOKE}'\n"
        f"{indent}    THEN COALESCE({column}, 0) ELSE 0 END) AS {column}"
        for column in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                       "cache_write_input_tokens")
    )  # fmt: skip


_USAGE_SQL = """SELECT
  customer_id,
  substr("timestamp", 1, 10) AS day,
  COALESCE(foundation_model, '{unknown_model}') AS model,
  sum(CASE WHEN event_type = 'bedrock_invoke' THEN 1 ELSE 0 END) AS requests,
{token_sums},
  sum(CASE WHEN event_type = 'proxy_refused' AND error_code IN ({refusal_codes})
      THEN 1 ELSE 0 END) AS refused,
  sum(CASE WHEN event_type = 'bedrock_error' THEN 1 ELSE 0 END) AS errors,
  sum(CASE WHEN event_type = 'bedrock_invoke' AND COALESCE(usage_estimated, false)
      THEN 1 ELSE 0 END) AS estimated
FROM usage_log
WHERE dt BETWEEN ? AND ?
  AND substr("timestamp", 1, 10) BETWEEN ? AND ?
  AND event_type IN ('bedrock_invoke', 'proxy_refused', 'bedrock_error')
  AND {customer_filter}
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3"""

USAGE_BY_CUSTOMER_SQL = _USAGE_SQL.format(
    token_sums=billed_token_sums(),
    customer_filter="customer_id = ?", unknown_model=UNKNOWN_MODEL, refusal_codes=_REFUSAL_CODES_SQL
)
"""One customer's usage per day and model. Parameters: dt_from, dt_to, first, last, id."""

USAGE_ALL_CUSTOMERS_SQL = _USAGE_SQL.format(
    token_sums=billed_token_sums(),
    customer_filter="customer_id IS NOT NULL",
    unknown_model=UNKNOWN_MODEL,
    refusal_codes=_REFUSAL_CODES_SQL,
)
"""Every customer's usage per day and model (``--all`` and reconcile). Parameters: dt_from,
dt_to, first, last."""

USAGE_COLUMNS = (
    "customer_id",
    "day",
    "model",
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "refused",
    "errors",
    "estimated",
)


def partition_range(first: date, last: date) -> tuple[str, str]:
    """The ``dt`` values to scan for lines of ``first``..``last``: widened by a day each side."""
    return (first - timedelta(days=1)).isoformat(), (last + timedelta(days=1)).isoformat()


USAGE_BY_KEY_SQL = f"""SELECT
  COALESCE(key_id, '') AS key_id,
  substr("timestamp", 1, 10) AS day,
  sum(CASE WHEN event_type = '{EVENT_INVOKE}' THEN 1 ELSE 0 END) AS requests,
{billed_token_sums()},
  sum(CASE WHEN event_type = '{EVENT_ERROR}' THEN 1 ELSE 0 END) AS errors,
  sum(CASE WHEN event_type IN ('{EVENT_INVOKE}', '{EVENT_ERROR}')
      THEN 1 ELSE 0 END) AS admitted,
  sum(CASE WHEN event_type = '{EVENT_TEST}' THEN 1 ELSE 0 END) AS test_requests
FROM usage_log
WHERE dt BETWEEN ? AND ?
  AND substr("timestamp", 1, 10) BETWEEN ? AND ?
  AND event_type IN ('{EVENT_INVOKE}', '{EVENT_ERROR}', '{EVENT_TEST}')
  AND customer_id = ?
GROUP BY 1, 2
ORDER BY 1, 2"""
"""One customer's usage per key and day from the log (``usage --group-by key --source
athena``), the columns of the KEY# counters (core/schema.KEY_COUNTERS), except that
``admitted`` counts every admitted outcome (the counters keep it for a key with its own
daily limit only); ``key_id`` is '' on lines written before keys. Parameters: dt_from,
dt_to, first, last, customer id."""


def key_usage_query(first: date, last: date, customer_id: str) -> tuple[str, list]:
    """``USAGE_BY_KEY_SQL`` and its parameters, bound as ``usage_query``'s are."""
    dt_from, dt_to = partition_range(first, last)
    return USAGE_BY_KEY_SQL, [dt_from, dt_to, first.isoformat(), last.isoformat(), customer_id]


def usage_query(first: date, last: date, customer_id: str | None = None) -> tuple[str, list]:
    """The SQL text and its parameters (plain Python strings) for a usage read.

    Each engine binds the parameters its own way: DuckDB natively, Athena as SQL literals
    (stores/athena.py). ``customer_id=None`` reads every customer.
    """
    dt_from, dt_to = partition_range(first, last)
    params: list = [dt_from, dt_to, first.isoformat(), last.isoformat()]
    if customer_id is None:
        return USAGE_ALL_CUSTOMERS_SQL, params
    return USAGE_BY_CUSTOMER_SQL, [*params, customer_id]
