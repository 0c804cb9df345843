"""Usage anomalies: a customer's day against their own trailing baseline. Pure.

The rule (docs/alerts.md, "Anomalies"), chosen to be explainable to a customer in one line:

- **spike**: the day's tokens (or requests) exceed ``SPIKE_FACTOR`` times the median of the
  customer's previous ``window`` days (days without usage count as 0) and exceed that
  median by at least a floor (``TOKEN_FLOOR`` tokens, ``REQUEST_FLOOR`` requests), so a
  customer going from 3 to 12 requests is not an incident. The median ignores one or two
  outlying days, where a mean would be dragged up by the very spike it should flag, and
  needs no distribution assumption (a z-score on such small, skewed counts would).
- **new model**: a model used on the day and on none of the previous ``window`` days, for a
  customer who used something on at least ``MIN_HISTORY_DAYS`` of them.
- **error rate**: errors / (requests + errors) on the day of at least ``ERROR_RATE`` with at
  least ``ERROR_FLOOR`` errors, and ``SPIKE_FACTOR`` times the trailing window's own rate.

A customer with fewer than ``MIN_HISTORY_DAYS`` active days in the window has no baseline
and is never flagged (a new customer's first busy day is not an anomaly).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from statistics import median

from .usage import UsageRow

WINDOW_DAYS = 14
SPIKE_FACTOR = 3
TOKEN_FLOOR = 10_000
REQUEST_FLOOR = 50
MIN_HISTORY_DAYS = 7
ERROR_RATE = 0.2
ERROR_FLOOR = 10

SPIKE = "usage_spike"
NEW_MODEL = "new_model"
ERROR_SPIKE = "error_rate_spike"


@dataclass
class Day:
    requests: int = 0
    tokens: int = 0
    errors: int = 0
    models: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Anomaly:
    customer_id: str
    day: date
    kind: str
    metric: str
    value: float
    baseline: float
    detail: str

    def as_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "date": self.day.isoformat(),
            "kind": self.kind,
            "metric": self.metric,
            "value": self.value,
            "baseline": self.baseline,
            "detail": self.detail,
        }


def by_day(rows: Iterable[UsageRow]) -> dict[date, Day]:
    days: dict[date, Day] = defaultdict(Day)
    for row in rows:
        d = days[row.day]
        d.requests += row.requests
        d.tokens += (
            row.input_tokens
            + row.output_tokens
            + row.cache_read_input_tokens
            + row.cache_write_input_tokens
        )
        d.errors += row.errors
        if row.requests or row.errors:
            d.models.add(row.model)
    return dict(days)


def detect_customer(
    customer_id: str, days: Mapping[date, Day], day: date, window: int = WINDOW_DAYS
) -> list[Anomaly]:
    today = days.get(day)
    if today is None:
        return []
    previous = [days.get(day - timedelta(days=n), Day()) for n in range(1, window + 1)]
    active = sum(1 for d in previous if d.requests or d.errors)
    if active < MIN_HISTORY_DAYS:
        return []
    found: list[Anomaly] = []
    for metric, floor in (("tokens", TOKEN_FLOOR), ("requests", REQUEST_FLOOR)):
        value = getattr(today, metric)
        base = median(getattr(d, metric) for d in previous)
        if value > SPIKE_FACTOR * base and value - base >= floor:
            found.append(
                Anomaly(
                    customer_id,
                    day,
                    SPIKE,
                    metric,
                    value,
                    base,
                    f"{metric} {value} vs a {window}-day median of {base:g}",
                )
            )
    seen = set().union(*(d.models for d in previous))
    for model in sorted(today.models - seen):
        found.append(Anomaly(customer_id, day, NEW_MODEL, "model", 1, 0, f"first use of {model}"))
    attempts = today.requests + today.errors
    if attempts and today.errors >= ERROR_FLOOR:
        rate = today.errors / attempts
        past_errors = sum(d.errors for d in previous)
        past_attempts = sum(d.requests + d.errors for d in previous)
        past_rate = past_errors / past_attempts if past_attempts else 0.0
        if rate >= ERROR_RATE and rate > SPIKE_FACTOR * past_rate:
            found.append(
                Anomaly(
                    customer_id,
                    day,
                    ERROR_SPIKE,
                    "error_rate",
                    round(rate, 4),
                    round(past_rate, 4),
                    f"{today.errors} of {attempts} requests failed ({rate:.0%})",
                )
            )
    return found


def detect(
    history: Mapping[str, Iterable[UsageRow]], day: date, window: int = WINDOW_DAYS
) -> list[Anomaly]:
    """Every anomaly of ``day`` across customers, sorted by customer then kind."""
    found: list[Anomaly] = []
    for customer_id in sorted(history):
        found += detect_customer(customer_id, by_day(history[customer_id]), day, window)
    return found
