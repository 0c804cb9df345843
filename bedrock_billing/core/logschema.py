"""The per-request usage log line: its schema, written once.

The proxy writes one JSON object per request with exactly these fields (``None`` for a
field that does not apply). The Glue table (deploy), the local engine's view (DuckDB) and
the Athena queries are all derived from ``FIELDS``; a test checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

# Event types
EVENT_INVOKE = "bedrock_invoke"  # Bedrock answered with success: billable
EVENT_ERROR = "bedrock_error"  # admitted, but Bedrock (or the proxy) failed: not billed
EVENT_REFUSED = "proxy_refused"  # refused by the proxy (auth, limit, bad input): not billed

LOG_PARTITION_KEY = "dt"  # S3 layout: <prefix>/dt=YYYY-MM-DD/<file>.jsonl (arrival date)


@dataclass(frozen=True)
class Field:
    name: str
    athena_type: str  # Athena/Hive DDL type; DuckDB's is derived from it
    doc: str


FIELDS: tuple[Field, ...] = (
    Field("timestamp", "string", "ISO 8601 UTC instant of admission, with Z"),
    Field("event_type", "string", "bedrock_invoke | bedrock_error | proxy_refused"),
    Field("request_id", "string", "the proxy's request id (API Gateway's, or generated)"),
    Field("customer_id", "string", "customer UUID; null when the token was not recognised"),
    Field("model_id", "string", "the model id as the client sent it"),
    Field("foundation_model", "string", "the normalised foundation model id (pricing, limits)"),
    Field("api", "string", "invoke | converse"),
    Field("streamed", "boolean", "true when served with a response stream"),
    Field("status", "int", "HTTP status returned to the client"),
    Field("error_code", "string", "the proxy's error code, null on success"),
    Field("input_tokens", "bigint", "input tokens as reported by Bedrock"),
    Field("output_tokens", "bigint", "output tokens as reported by Bedrock"),
    Field("cache_read_input_tokens", "bigint", "prompt-cache read tokens"),
    Field("cache_write_input_tokens", "bigint", "prompt-cache write tokens"),
    Field("token_count", "bigint", "input + output + cache tokens"),
    Field("usage_estimated", "boolean", "true when Bedrock did not report the usage"),
    Field("duration_ms", "bigint", "time spent in the proxy, ms"),
    Field("bedrock_latency_ms", "bigint", "Bedrock's invocation latency when reported, ms"),
    Field("bedrock_request_id", "string", "Bedrock's x-amzn-requestid"),
    Field("service_tier", "string", "the service tier Bedrock served, when reported"),
    Field(
        "counter_write_failed", "boolean", "true when the DynamoDB counters could not be written"
    ),
    Field("near_timeout", "boolean", "true when the call ran close to the integration timeout"),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)


# ---- Derived: the Glue/Athena table (deploy reuses it; the local engine's view matches it)

LOG_TABLE = "usage_log"
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"


def glue_columns() -> list[dict[str, str]]:
    """Glue ``Columns`` for the log table, in ``FIELDS`` order."""
    return [{"Name": f.name, "Type": f.athena_type, "Comment": f.doc} for f in FIELDS]


def glue_table_input(s3_location: str, table: str = LOG_TABLE) -> dict:
    """The Glue ``TableInput`` for the usage log: JSON lines, ``dt`` partitions projected.

    Partition projection (``projection.dt.*``) lets Athena compute the partitions from the
    query's ``dt`` predicate: no crawler and no ``MSCK REPAIR`` to wait for.
    """
    location = s3_location.rstrip("/") + "/"
    return {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "json",
            "projection.enabled": "true",
            "projection.dt.type": "date",
            "projection.dt.format": "yyyy-MM-dd",
            "projection.dt.range": "2024-01-01,NOW",
            "projection.dt.interval": "1",
            "projection.dt.interval.unit": "DAYS",
            "storage.location.template": location + "dt=${dt}/",
        },
        "PartitionKeys": [{"Name": LOG_PARTITION_KEY, "Type": "string"}],
        "StorageDescriptor": {
            "Columns": glue_columns(),
            "Location": location,
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {
                "SerializationLibrary": JSON_SERDE,
                "Parameters": {"ignore.malformed.json": "true"},
            },
        },
    }
