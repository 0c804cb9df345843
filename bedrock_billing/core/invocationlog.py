"""Bedrock's model invocation log as a table, and the query that matches it with the
proxy's usage log: written once, for Athena and the local engine (DuckDB) alike.

Bedrock writes one JSON record per invocation (docs/reconcile.md cites the schema) to
``<prefix>AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/*.json.gz``.
The table ``invocation_log`` reads the fields reconciliation needs, nested as Bedrock nests
them (``input.inputTokenCount``), with a partition column ``dt`` = ``YYYY/MM/DD``: the Glue
table projects it from the key (no crawler), the local view takes it from the file's path.

The proxy tags each call with request metadata (proxy/metadata.py); the table reads those
keys as fields of a struct, so an untagged record reads NULL in both engines (a map's
subscript would fail in Trino on a missing key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from .logschema import (
    EVENT_ADMITTED,
    EVENT_ERROR,
    EVENT_INVOKE,
    billed_token_sums,
    partition_range,
    projected_json_table,
)

# The request-metadata keys the proxy sets on every Bedrock call (proxy/metadata.py).
CUSTOMER_KEY = "bedrock_billing_customer_id"
REQUEST_KEY = "bedrock_billing_request_id"
# The installation: its usage table's name, unique in an account and region, so two
# installations sharing the region's one logging configuration tell their calls apart.
INSTALLATION_KEY = "bedrock_billing_usage_table"
OWN_KEYS = (CUSTOMER_KEY, REQUEST_KEY, INSTALLATION_KEY)

INVOCATION_LOG_PREFIX = "bedrock-invocation-logs/"  # in the stack's log bucket
INVOCATION_TABLE = "invocation_log"
PARTITION = "dt"  # YYYY/MM/DD, as in Bedrock's keys


def s3_prefix(prefix: str, account_id: str, region: str) -> str:
    """``<prefix>AWSLogs/<account>/BedrockModelInvocationLogs/<region>/``."""
    base = (prefix or "").strip("/")
    base = f"{base}/" if base else ""
    return f"{base}AWSLogs/{account_id}/BedrockModelInvocationLogs/{region}/"


def day_folder(day: date) -> str:
    return day.strftime("%Y/%m/%d")


@dataclass(frozen=True)
class Column:
    name: str
    athena_type: str
    duckdb_type: str


_META = ", ".join(f"{k}:string" for k in OWN_KEYS)
_META_DUCK = ", ".join(f"{k} VARCHAR" for k in OWN_KEYS)
COLUMNS: tuple[Column, ...] = (
    Column("schemaType", "string", "VARCHAR"),
    Column("timestamp", "string", "VARCHAR"),
    Column("accountId", "string", "VARCHAR"),
    Column("region", "string", "VARCHAR"),
    Column("requestId", "string", "VARCHAR"),
    Column("operation", "string", "VARCHAR"),
    Column("modelId", "string", "VARCHAR"),
    Column("errorCode", "string", "VARCHAR"),
    Column("inferenceRegion", "string", "VARCHAR"),
    Column("identity", "struct<arn:string>", "STRUCT(arn VARCHAR)"),
    Column(
        "input",
        "struct<inputTokenCount:bigint,cacheReadInputTokenCount:bigint,"
        "cacheWriteInputTokenCount:bigint>",
        "STRUCT(inputTokenCount BIGINT, cacheReadInputTokenCount BIGINT, "
        "cacheWriteInputTokenCount BIGINT)",
    ),
    Column("output", "struct<outputTokenCount:bigint>", "STRUCT(outputTokenCount BIGINT)"),
    Column("requestMetadata", f"struct<{_META}>", f"STRUCT({_META_DUCK})"),
)


def glue_table_input(s3_location: str, table: str = INVOCATION_TABLE) -> dict:
    """The Glue ``TableInput``: JSON lines (gzip is read by extension), ``dt`` projected
    as ``yyyy/MM/dd`` into the key, the hour folders below it read as one partition."""
    return projected_json_table(
        table, s3_location, [{"Name": c.name, "Type": c.athena_type} for c in COLUMNS],
        dt_format="yyyy/MM/dd", dt_start="2024/01/01", dt_folder="${dt}/", partition=PARTITION,
    )  # fmt: skip


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_view_sql(files_glob: str, table: str = INVOCATION_TABLE) -> str:
    """The DuckDB view named like the Athena table over Bedrock's own folder layout
    (``.../YYYY/MM/DD/HH/*.json.gz``), ``dt`` taken from the path."""
    columns = ", ".join(f"{_quote(c.name)}: {_quote(c.duckdb_type)}" for c in COLUMNS)
    return (
        f"CREATE OR REPLACE VIEW {table} AS SELECT *, "
        r"regexp_extract(filename, '(\d{4}/\d{2}/\d{2})/\d{2}/[^/]*$', 1) AS dt "
        f"FROM read_json({_quote(files_glob)}, format = 'newline_delimited', "
        f"columns = {{{columns}}}, filename = true, ignore_errors = true)"
    )


# ---- The match: one SQL text for Athena and DuckDB (Trino dialect, ``?`` markers)
#
# proxy: the proxy's lines that reached Bedrock (billed or failed) with Bedrock's request
#        id, one row per id (a repaired line and the error line it repairs share one).
# aws:   the invocation records the installation's tag marks as the proxy's.
# Both sides are read a day wider than the range (a request admitted at 23:59:59 can be
# logged by Bedrock the next day); the report day is the proxy's, else Bedrock's, and
# decides. Only rows that differ come back:
#   unrecorded      Bedrock served it (no error), the proxy billed nothing: the costly case
#   not_in_aws_log  the proxy billed it, Bedrock's log has no successful record of it
#   tokens          both have it, the token counts differ
# adm:   the proxy's admission lines (written before the call), joined on the proxy's
#        request id: ``admitted`` says the proxy took the request and then lost it (died,
#        or its outcome line did), as opposed to a call made outside the proxy.

_MATCH_SQL = f"""SELECT * FROM (
SELECT
  COALESCE(p.customer_id, a.customer_id, adm.customer_id) AS customer_id,
  COALESCE(p.day, a.day) AS day,
  COALESCE(p.model, a.model_id) AS model,
  CASE
    WHEN a.rid IS NOT NULL AND a.error_code IS NULL AND COALESCE(p.billed, 0) = 0
      THEN 'unrecorded'
    WHEN p.billed = 1 AND (a.rid IS NULL OR a.error_code IS NOT NULL)
      THEN 'not_in_aws_log'
    WHEN p.billed = 1 AND (p.input_tokens <> a.input_tokens
      OR p.output_tokens <> a.output_tokens
      OR p.cache_read_input_tokens <> a.cache_read_input_tokens
      OR p.cache_write_input_tokens <> a.cache_write_input_tokens)
      THEN 'tokens'
  END AS kind,
  COALESCE(p.rid, a.rid) AS bedrock_request_id,
  COALESCE(p.request_id, a.request_id) AS request_id,
  a.model_id AS aws_model_id,
  a.ts AS aws_timestamp,
  a.operation AS aws_operation,
  p.input_tokens AS proxy_input_tokens,
  p.output_tokens AS proxy_output_tokens,
  p.cache_read_input_tokens AS proxy_cache_read_input_tokens,
  p.cache_write_input_tokens AS proxy_cache_write_input_tokens,
  a.input_tokens AS aws_input_tokens,
  a.output_tokens AS aws_output_tokens,
  a.cache_read_input_tokens AS aws_cache_read_input_tokens,
  a.cache_write_input_tokens AS aws_cache_write_input_tokens,
  CASE WHEN adm.request_id IS NULL THEN 0 ELSE 1 END AS admitted
FROM (
  SELECT
    bedrock_request_id AS rid,
    max(request_id) AS request_id,
    max(customer_id) AS customer_id,
    max(foundation_model) AS model,
    min(substr("timestamp", 1, 10)) AS day,
    max(CASE WHEN event_type = '{EVENT_INVOKE}' THEN 1 ELSE 0 END) AS billed,
{billed_token_sums("    ")}
  FROM usage_log
  WHERE dt BETWEEN ? AND ?
    AND substr("timestamp", 1, 10) BETWEEN ? AND ?
    AND event_type IN ('{EVENT_INVOKE}', '{EVENT_ERROR}')
    AND bedrock_request_id IS NOT NULL
  GROUP BY bedrock_request_id
) p
FULL OUTER JOIN (
  SELECT
    requestId AS rid,
    max(requestMetadata.{REQUEST_KEY}) AS request_id,
    max(requestMetadata.{CUSTOMER_KEY}) AS customer_id,
    max(modelId) AS model_id,
    max(operation) AS operation,
    min("timestamp") AS ts,
    min(substr("timestamp", 1, 10)) AS day,
    max(errorCode) AS error_code,
    max(COALESCE("input".inputTokenCount, 0)) AS input_tokens,
    max(COALESCE("output".outputTokenCount, 0)) AS output_tokens,
    max(COALESCE("input".cacheReadInputTokenCount, 0)) AS cache_read_input_tokens,
    max(COALESCE("input".cacheWriteInputTokenCount, 0)) AS cache_write_input_tokens
  FROM {INVOCATION_TABLE}
  WHERE dt BETWEEN ? AND ?
    AND substr("timestamp", 1, 10) BETWEEN ? AND ?
    AND requestMetadata.{INSTALLATION_KEY} = ?
  GROUP BY requestId
) a ON p.rid = a.rid
LEFT JOIN (
  SELECT request_id, max(customer_id) AS customer_id
  FROM usage_log
  WHERE dt BETWEEN ? AND ?
    AND substr("timestamp", 1, 10) BETWEEN ? AND ?
    AND event_type = '{EVENT_ADMITTED}'
  GROUP BY request_id
) adm ON adm.request_id = COALESCE(p.request_id, a.request_id)
) matched
WHERE kind IS NOT NULL AND day BETWEEN ? AND ?
ORDER BY customer_id, day, model, bedrock_request_id"""

MATCH_SQL = _MATCH_SQL
"""Parameters: usage_log dt_from, dt_to, day_from, day_to; invocation_log dt_from, dt_to,
day_from, day_to, installation; admissions as the usage log; report first, last
(``match_query`` builds them)."""

MATCH_COLUMNS = (
    "customer_id",
    "day",
    "model",
    "kind",
    "bedrock_request_id",
    "request_id",
    "aws_model_id",
    "aws_timestamp",
    "aws_operation",
    "proxy_input_tokens",
    "proxy_output_tokens",
    "proxy_cache_read_input_tokens",
    "proxy_cache_write_input_tokens",
    "aws_input_tokens",
    "aws_output_tokens",
    "aws_cache_read_input_tokens",
    "aws_cache_write_input_tokens",
    "admitted",
)

UNTAGGED_SQL = f"""SELECT count(*) FROM {INVOCATION_TABLE}
WHERE dt BETWEEN ? AND ?
  AND substr("timestamp", 1, 10) BETWEEN ? AND ?
  AND requestMetadata.{INSTALLATION_KEY} IS NULL"""
"""Records of the range without any installation's tag: other callers in the account and
region (or calls made before the proxy tagged them). Parameters: dt_from, dt_to, first,
last."""


def aws_partition_range(first: date, last: date) -> tuple[str, str]:
    """The ``dt`` values (``YYYY/MM/DD``) to scan for records of ``first``..``last``."""
    return day_folder(first - timedelta(days=1)), day_folder(last + timedelta(days=1))


def match_query(first: date, last: date, installation: str) -> tuple[str, list]:
    """The match SQL and its parameters for the report range ``first``..``last``."""
    wide_first, wide_last = first - timedelta(days=1), last + timedelta(days=1)
    log_dt = list(partition_range(wide_first, wide_last))
    aws_dt = list(aws_partition_range(wide_first, wide_last))
    days = [wide_first.isoformat(), wide_last.isoformat()]
    report = [first.isoformat(), last.isoformat()]
    return MATCH_SQL, [*log_dt, *days, *aws_dt, *days, installation, *log_dt, *days, *report]


def untagged_query(first: date, last: date) -> tuple[str, list]:
    return UNTAGGED_SQL, [*aws_partition_range(first, last), first.isoformat(), last.isoformat()]
