"""Admitted requests that never got an outcome: the proxy's admission line (written before
the Bedrock call) without the request's outcome line.

The proxy writes ``proxy_admitted`` when a request is admitted, and one outcome line
(``bedrock_invoke``, ``bedrock_error``) when it ends. A request whose function was killed
(Lambda's timeout, a crash) leaves only the first: Bedrock may have generated the answer
and AWS billed it, while no counter and no usage line counts it. ``reconcile`` pairs the
two by ``request_id`` and reports each admission without an outcome as abandoned, with what
the admission knew (customer, model, input size, ``max_tokens``).

One SQL text for Athena and DuckDB, like core/logschema.py's usage queries. A line's own
``timestamp`` (the admission instant, on both lines) picks the days; ``dt`` is the arrival
date, so the admissions are scanned a day wider than the range on each side (as the usage
query does) and their outcomes one more day on each side: a request admitted just before
midnight whose outcome arrives after it still pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from .logschema import (
    EVENT_ADMITTED,
    EVENT_ERROR,
    EVENT_INVOKE,
    EVENT_REFUSED,
    partition_range,
)

ABANDONED_REASON = "abandoned: AWS may have billed it"

ABANDONED_COLUMNS = (
    "request_id",
    "customer_id",
    "timestamp",
    "model_id",
    "foundation_model",
    "wire_api",
    "api",
    "streamed",
    "request_bytes",
    "max_tokens",
)

_OUTCOMES_SQL = ", ".join(f"'{e}'" for e in (EVENT_INVOKE, EVENT_ERROR, EVENT_REFUSED))

_ABANDONED_SQL = """SELECT DISTINCT
  a.request_id, a.customer_id, a."timestamp", a.model_id, a.foundation_model, a.wire_api,
  a.api, a.streamed, a.request_bytes, a.max_tokens
FROM usage_log a
LEFT JOIN (
  SELECT DISTINCT request_id FROM usage_log
  WHERE dt BETWEEN ? AND ?
    AND event_type IN ({outcomes})
    AND request_id IS NOT NULL
) o ON o.request_id = a.request_id
WHERE a.dt BETWEEN ? AND ?
  AND substr(a."timestamp", 1, 10) BETWEEN ? AND ?
  AND a.event_type = '{admitted}'
  AND o.request_id IS NULL
  AND {customer_filter}
ORDER BY 3, 1"""

ABANDONED_BY_CUSTOMER_SQL = _ABANDONED_SQL.format(
    outcomes=_OUTCOMES_SQL, admitted=EVENT_ADMITTED, customer_filter="a.customer_id = ?"
)
"""One customer's abandoned requests. Parameters: outcome dt_from, dt_to, admission
dt_from, dt_to, first, last, customer id."""

ABANDONED_ALL_CUSTOMERS_SQL = _ABANDONED_SQL.format(
    outcomes=_OUTCOMES_SQL, admitted=EVENT_ADMITTED, customer_filter="a.customer_id IS NOT NULL"
)
"""Every customer's abandoned requests. Parameters as above, without the customer id."""


def outcome_partition_range(first: date, last: date) -> tuple[str, str]:
    """The ``dt`` values to scan for the outcomes of ``first``..``last``'s admissions."""
    return (first - timedelta(days=2)).isoformat(), (last + timedelta(days=2)).isoformat()


def abandoned_query(first: date, last: date, customer_id: str | None = None) -> tuple[str, list]:
    """The SQL text and its parameters (plain strings) for the abandoned requests."""
    params: list = [
        *outcome_partition_range(first, last),
        *partition_range(first, last),
        first.isoformat(),
        last.isoformat(),
    ]
    if customer_id is None:
        return ABANDONED_ALL_CUSTOMERS_SQL, params
    return ABANDONED_BY_CUSTOMER_SQL, [*params, customer_id]


def _int(value) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class AbandonedRequest:
    """An admitted request with no outcome line: what its admission line recorded."""

    request_id: str
    customer_id: str
    admitted_at: str  # the admission line's timestamp (ISO 8601, Z)
    model: str  # the foundation model, else the model id as sent
    model_id: str | None = None
    wire_api: str | None = None
    api: str | None = None
    streamed: bool | None = None
    request_bytes: int | None = None
    max_tokens: int | None = None

    @classmethod
    def from_record(cls, record) -> AbandonedRequest:
        v = dict(zip(ABANDONED_COLUMNS, record, strict=True))
        return cls(
            request_id=str(v["request_id"]),
            customer_id=str(v["customer_id"]),
            admitted_at=str(v["timestamp"]),
            model=str(v["foundation_model"] or v["model_id"] or "unknown"),
            model_id=v["model_id"],
            wire_api=v["wire_api"],
            api=v["api"],
            streamed=None if v["streamed"] is None else str(v["streamed"]).lower() == "true",
            request_bytes=_int(v["request_bytes"]),
            max_tokens=_int(v["max_tokens"]),
        )

    def to_dict(self) -> dict:
        return {
            "request_id": self.request_id,
            "customer_id": self.customer_id,
            "admitted_at": self.admitted_at,
            "model": self.model,
            "wire_api": self.wire_api,
            "api": self.api,
            "streamed": self.streamed,
            "request_bytes": self.request_bytes,
            "max_tokens": self.max_tokens,
            "reason": ABANDONED_REASON,
        }
