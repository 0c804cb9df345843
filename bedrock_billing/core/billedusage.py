"""Usage as AWS bills it: the proxy's log summed by usage type, and the AWS Cost and Usage
Report 2.0 (Data Exports) read for Bedrock, in one SQL text for Athena and DuckDB each.

The log query groups what the proxy served by day, model, service tier and inference scope,
with cache writes split by lifetime, so each count meets the CUR line item that bills it.
The CUR query sums a billing period's Bedrock usage line items per usage type; the usage
type is then classified here (:func:`classify_usage_type`) into a token type and a
usage-type label (core/pricing/usagetypes.py), and matched to a model of the price book.

CUR 2.0 columns used (AWS Data Exports table dictionary,
https://docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2.html):
``bill_billing_period_start_date``, ``bill_invoice_id`` (blank until the bill is final),
``bill_bill_type``, ``line_item_line_item_type``, ``line_item_product_code``,
``line_item_usage_type``, ``line_item_usage_amount``, ``line_item_unblended_cost``,
``pricing_unit``, ``product_region_code``, ``product['product_name']`` (the product map),
and the export's ``billing_period`` partition (``YYYY-MM``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .logschema import partition_range
from .timeutil import Period

# ---- The proxy's side: the usage log by usage type

USAGE_BY_TYPE_SQL = """SELECT
  substr("timestamp", 1, 10) AS day,
  foundation_model AS model,
  COALESCE(service_tier, 'default') AS service_tier,
  COALESCE(inference_scope, 'in_region') AS inference_scope,
  count(*) AS requests,
  sum(COALESCE(input_tokens, 0)) AS input_tokens,
  sum(COALESCE(output_tokens, 0)) AS output_tokens,
  sum(COALESCE(cache_read_input_tokens, 0)) AS cache_read_input_tokens,
  sum(COALESCE(cache_write_input_tokens, 0)
      - COALESCE(cache_write_1h_input_tokens, 0)) AS cache_write_5m_input_tokens,
  sum(COALESCE(cache_write_1h_input_tokens, 0)) AS cache_write_1h_input_tokens
FROM usage_log
WHERE dt BETWEEN ? AND ?
  AND substr("timestamp", 1, 10) BETWEEN ? AND ?
  AND event_type = 'bedrock_invoke'
  AND customer_id IS NOT NULL
  AND foundation_model IS NOT NULL
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4"""
"""What the proxy served, by day, model, tier and scope. Parameters: dt_from, dt_to, first,
last (as the usage queries)."""

USAGE_BY_TYPE_COLUMNS = (
    "day",
    "model",
    "service_tier",
    "inference_scope",
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_5m_input_tokens",
    "cache_write_1h_input_tokens",
)
# The token columns, by the price-book key (token type) that prices them.
TOKEN_COLUMNS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read_input_tokens",
    "cache_write": "cache_write_5m_input_tokens",
    "cache_write_1h": "cache_write_1h_input_tokens",
}


def usage_by_type_query(first: date, last: date) -> tuple[str, list]:
    dt_from, dt_to = partition_range(first, last)
    return USAGE_BY_TYPE_SQL, [dt_from, dt_to, first.isoformat(), last.isoformat()]


# ---- AWS's side: the Cost and Usage Report 2.0

CUR_TABLE = "cur_bedrock"  # the local engine's view; in Athena, the export's own table
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}(\.[A-Za-z_][A-Za-z0-9_]{0,127})?$")

_CUR_SQL = """SELECT
  substr(CAST(line_item_usage_start_date AS VARCHAR), 1, 10) AS day,
  line_item_usage_type AS usage_type,
  COALESCE(element_at(product, 'product_name'), '') AS product_name,
  COALESCE(product_region_code, '') AS region,
  COALESCE(pricing_unit, '') AS pricing_unit,
  sum(CAST(line_item_usage_amount AS DECIMAL(38, 6))) AS usage_amount,
  sum(CAST(line_item_unblended_cost AS DECIMAL(38, 10))) AS unblended_cost,
  count(*) AS line_items,
  sum(CASE WHEN COALESCE(bill_invoice_id, '') = '' THEN 1 ELSE 0 END) AS open_line_items
FROM {table}
WHERE billing_period = ?
  AND line_item_line_item_type = 'Usage'
  AND (line_item_product_code = 'AmazonBedrock'
       OR element_at(product, 'product_name') LIKE '%Amazon Bedrock%')
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5"""

CUR_COLUMNS = (
    "day",
    "usage_type",
    "product_name",
    "region",
    "pricing_unit",
    "usage_amount",
    "unblended_cost",
    "line_items",
    "open_line_items",
)


def cur_query(period: Period, table: str = CUR_TABLE) -> tuple[str, list]:
    """The SQL text and parameters reading ``period``'s Bedrock usage from ``table``.

    The table is an identifier, never a value: it is checked against a strict pattern
    (``db.table`` or ``table``) and is the only thing formatted into the text."""
    if not _IDENTIFIER.match(table):
        raise ValueError(f"invalid CUR table name {table!r}")
    return _CUR_SQL.format(table=table), [str(period)]


# ---- Classifying a usage type

# The token type from the usage type's end: Bedrock's own usage types end in
# "-input-tokens", "-output-tokens", "-cache-read-input-token-count" and
# "-cache-write-input-token-count" (Amazon Bedrock User Guide, "Understanding your Amazon
# Bedrock Cost and Usage Report data"); models sold through AWS Marketplace bill
# "...InputTokenCount-Units" style usage types. Order matters: cache types first.
_TOKEN_PATTERNS = (
    ("cache_read", re.compile(r"cache[-_]?read[-_]?input[-_]?token", re.I)),
    ("cache_write", re.compile(r"cache[-_]?write[-_]?input[-_]?token", re.I)),
    ("input", re.compile(r"input[-_]?token", re.I)),
    ("output", re.compile(r"output[-_]?token", re.I)),
)
_ONE_HOUR = re.compile(r"(^|[-_:])1h($|[-_:])", re.I)
_WORD = re.compile(r"[A-Za-z0-9]+")
_REGION_CODE = re.compile(r"^[A-Z]{2,4}\d?(?:-[A-Z]{2,4}\d?)?$")


@dataclass(frozen=True)
class UsageTypeClass:
    token_type: str  # input | output | cache_read | cache_write | cache_write_1h
    tier: str
    scope: str
    batch: bool


def classify_usage_type(usage_type: str) -> UsageTypeClass | None:
    """The token type and usage-type dimensions a CUR usage type names; None when it bills
    no tokens (a provisioned-throughput hour, a custom-model storage month...)."""
    token_type = None
    for name, pattern in _TOKEN_PATTERNS:
        if pattern.search(usage_type):
            token_type = name
            break
    if token_type is None:
        return None
    if token_type == "cache_write" and _ONE_HOUR.search(usage_type):
        token_type = "cache_write_1h"
    words = {w.lower() for w in _WORD.findall(usage_type)}
    tier = next((t for t in ("priority", "flex", "reserved") if t in words), "default")
    scope = "global" if "global" in words else (
        "geo" if words & {"cross", "crossregion", "cris", "geo"} else "in_region"
    )
    return UsageTypeClass(token_type, tier, scope, "batch" in words)


def model_words(text: str) -> str:
    """A model's name reduced for matching: letters and digits only, lower case, without
    the edition suffix a Marketplace product name carries."""
    text = re.sub(r"\(amazon bedrock edition\)", "", text, flags=re.I)
    return "".join(_WORD.findall(text)).lower()


def usage_type_model_part(usage_type: str) -> str:
    """The model segment of a Bedrock usage type (``USE1-NovaLite-input-tokens`` ->
    ``NovaLite``): between the region code and the token words."""
    parts = usage_type.split("-")
    if parts and _REGION_CODE.match(parts[0].split(":")[0]):
        parts = parts[1:]
    return parts[0] if parts else ""


def units_per_amount(pricing_unit: str) -> int:
    """Tokens per unit of ``line_item_usage_amount``: a pricing unit of "1K tokens" means
    1,000 a unit, "1M tokens" 1,000,000; anything else is counted as tokens."""
    unit = pricing_unit.replace(" ", "").replace(",", "").lower()
    if unit.startswith(("1m", "1000000")):
        return 1_000_000
    if unit.startswith(("1k", "1000")):
        return 1000
    return 1


def tokens_of(amount: Decimal, pricing_unit: str) -> Decimal:
    return amount * units_per_amount(pricing_unit)


__all__ = [
    "CUR_COLUMNS",
    "CUR_TABLE",
    "TOKEN_COLUMNS",
    "USAGE_BY_TYPE_COLUMNS",
    "USAGE_BY_TYPE_SQL",
    "UsageTypeClass",
    "classify_usage_type",
    "cur_query",
    "model_words",
    "tokens_of",
    "units_per_amount",
    "usage_by_type_query",
    "usage_type_model_part",
]
