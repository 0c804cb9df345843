"""Usage alerts: thresholds, which of them a counter change crosses, and the events sent.

Pure: no AWS call, no I/O. The notifier (``bedrock_billing.notifier``, fed by the usage
table's stream) and the CLI's services share it, so both agree on every item and event.

A threshold is a percentage of a limit (the daily request limit, the monthly token limit,
the monthly budget). A counter change from ``old`` to ``new`` crosses ``pct`` when
``old < limit*pct/100 <= new``; each crossing fires at most once per window (the day for the
daily limit, the month for the others), which the notifier guarantees with a conditional
write of the ``ALERT#`` marker below. 100% is sent as ``limit.reached``, the others as
``threshold.reached``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .errors import InvalidInput
from .schema import METER_PREFIX
from .timeutil import epoch_seconds, iso_z

DEFAULT_THRESHOLDS = (50, 80, 100)

# The limits an alert can watch: name -> (meter attribute, window, unit scale).
DAILY_REQUESTS = "daily_request_limit"
MONTHLY_TOKENS = "monthly_token_limit"
MONTHLY_BUDGET = "monthly_budget"
METRICS = (DAILY_REQUESTS, MONTHLY_TOKENS, MONTHLY_BUDGET)

# Event types (docs/webhooks.md).
THRESHOLD_REACHED = "threshold.reached"
LIMIT_REACHED = "limit.reached"
TOKEN_EXPIRING = "token.expiring"
INVOICE_FINALIZED = "invoice.finalized"
CREDITS_LOW = "credits.low"
ANOMALY_DETECTED = "anomaly.detected"
EVENT_TYPES = (
    THRESHOLD_REACHED,
    LIMIT_REACHED,
    TOKEN_EXPIRING,
    INVOICE_FINALIZED,
    CREDITS_LOW,
    ANOMALY_DETECTED,
)

# Usage-table sort keys the notifier owns (in the customer's partition, beside the meter).
SETTINGS_KEY = "NOTIFY#SETTINGS"  # thresholds, webhook url, encrypted signing secret
ALERT_PREFIX = "ALERT#"  # ALERT#<window>#<metric>#<pct>: fired once (TTL'd)
EVENT_PREFIX = "EVENT#"  # EVENT#<event id>: the event and its delivery state
ALERT_LIFETIME_DAYS = 62  # a marker outlives its window, then DynamoDB's TTL removes it
EVENT_LIFETIME_DAYS = 90

# Delivery states of an EVENT# item.
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
NO_WEBHOOK = "no_webhook"  # only the operator's topic got it


def parse_thresholds(values: Iterable[str | int]) -> tuple[int, ...]:
    """Percentages 1..100, sorted and unique; refuses anything else."""
    out = set()
    for value in values:
        text = str(value).strip().rstrip("%")
        if not text.isdigit() or not 1 <= int(text) <= 100:
            raise InvalidInput(f"threshold {value!r} is not a whole percentage from 1 to 100")
        out.add(int(text))
    if not out:
        raise InvalidInput("give at least one threshold")
    return tuple(sorted(out))


@dataclass(frozen=True)
class Crossing:
    metric: str  # one of METRICS
    pct: int
    window: str  # YYYY-MM-DD (daily) or YYYY-MM
    limit: int | Decimal
    value: int | Decimal

    @property
    def event_type(self) -> str:
        return LIMIT_REACHED if self.pct >= 100 else THRESHOLD_REACHED

    @property
    def marker_key(self) -> str:
        return f"{ALERT_PREFIX}{self.window}#{self.metric}#{self.pct}"


def _int(image: Mapping[str, Any], name: str) -> int:
    value = image.get(name)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def crossings(
    meter_sk: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    limits: Mapping[str, int | Decimal | None],
    thresholds: Iterable[int],
    budget_scale: int = 10**12,
) -> list[Crossing]:
    """The thresholds a change of one ``METER#YYYY-MM`` item crosses.

    ``old``/``new`` are the item's images as plain values (``core.items.from_item``);
    ``limits`` maps each metric to its limit (``None`` = unlimited, not watched). The
    daily metric compares every ``dNN`` attribute that changed, so a stream record that
    carries two days (never in practice) still fires each."""
    if not meter_sk.startswith(METER_PREFIX):
        return []
    month = meter_sk[len(METER_PREFIX) :]
    thresholds = sorted(set(thresholds))
    found: list[Crossing] = []

    def check(metric: str, window: str, before: int, after: int, limit, shown_limit, scale=1):
        if limit is None or limit <= 0 or after <= before:
            return
        for pct in thresholds:
            mark = limit * pct / 100
            if before < mark <= after:
                value = Decimal(after) / scale if scale != 1 else after
                found.append(Crossing(metric, pct, window, shown_limit, value))

    daily = limits.get(DAILY_REQUESTS)
    for name in sorted(new):
        if len(name) == 3 and name[0] == "d" and name[1:].isdigit():
            check(
                DAILY_REQUESTS,
                f"{month}-{name[1:]}",
                _int(old, name),
                _int(new, name),
                daily,
                daily,
            )
    tokens = limits.get(MONTHLY_TOKENS)
    check(MONTHLY_TOKENS, month, _int(old, "tokens"), _int(new, "tokens"), tokens, tokens)
    budget = limits.get(MONTHLY_BUDGET)
    if budget is not None:
        check(
            MONTHLY_BUDGET,
            month,
            _int(old, "spend"),
            _int(new, "spend"),
            int(Decimal(budget) * budget_scale),
            budget,
            budget_scale,
        )
    return found


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def make_event(
    event_type: str,
    customer_id: str,
    data: Mapping[str, Any],
    now: datetime,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The event as every receiver sees it (docs/webhooks.md)."""
    if event_type not in EVENT_TYPES:
        raise InvalidInput(f"unknown event type {event_type!r}")
    return {
        "id": event_id or new_event_id(),
        "type": event_type,
        "created": epoch_seconds(now),
        "customer_id": customer_id,
        "data": dict(data),
    }


def crossing_event(customer_id: str, crossing: Crossing, now: datetime) -> dict[str, Any]:
    limit, value = crossing.limit, crossing.value
    return make_event(
        crossing.event_type,
        customer_id,
        {
            "limit": crossing.metric,
            "threshold_percent": crossing.pct,
            "window": crossing.window,
            "limit_value": str(limit) if isinstance(limit, Decimal) else limit,
            "current_value": str(value) if isinstance(value, Decimal) else value,
            "at": iso_z(now),
        },
        now,
    )


def event_body(event: Mapping[str, Any]) -> bytes:
    """The exact bytes POSTed and signed: compact JSON, keys in a stable order."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


# The event-source mapping's filter (Lambda event filtering, docs/alerts.md): only changes
# of a METER# item reach the notifier; DAY#, MIN#, ALERT#, EVENT# writes and TTL deletions
# (eventName REMOVE) are dropped by Lambda before an invocation is billed.
STREAM_FILTER = {
    "eventName": ["INSERT", "MODIFY"],
    "dynamodb": {"Keys": {"sk": {"S": [{"prefix": METER_PREFIX}]}}},
}


def stream_filter_matches(record: Mapping[str, Any]) -> bool:
    """STREAM_FILTER applied in process (the sandbox feeds the notifier itself)."""
    sk = (((record.get("dynamodb") or {}).get("Keys") or {}).get("sk") or {}).get("S", "")
    return record.get("eventName") in ("INSERT", "MODIFY") and sk.startswith(METER_PREFIX)


def webhook_key_alias(base: str) -> str:
    """The KMS alias the deploy (and the sandbox) gives the key of the signing secrets."""
    return f"alias/{base}-webhooks"


def alerts_topic_name(base: str) -> str:
    return f"{base}-alerts"
