"""Usage rows and their pure arithmetic: grouping by day and model, totals, comparison.

A :class:`UsageRow` is one customer's usage of one foundation model on one UTC day: what a
DAY# counter item holds and what the log query returns. Both sources produce the same rows,
so reports and reconciliation are computed here, once, with no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date

from .customers import validate_customer_id  # noqa: F401 - re-exported for callers
from .errors import InvalidInput
from .logschema import UNKNOWN_MODEL  # noqa: F401 - re-exported for readers of rows
from .timeutil import iter_days

# The billable counters, in the order reports show them (pricing reads these).
METRICS: tuple[str, ...] = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
)
TOKEN_METRICS: tuple[str, ...] = METRICS[1:]
TOKEN_COUNTERS = TOKEN_METRICS

# Every counter, in output order: the billable ones, then the not-billed ones. The same
# names as the DAY# item attributes (core/schema.py DAY_COUNTERS) and the log query's columns.
COUNTERS: tuple[str, ...] = (*METRICS, "refused", "errors", "estimated")


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One customer's usage of one model on one UTC day (counts are whole numbers, never
    negative). The first seven fields are what pricing reads; the last three are counted
    for reports and reconciliation and are not billed."""

    day: date
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    refused: int = 0
    errors: int = 0
    estimated: int = 0

    def counts(self) -> tuple[int, int, int, int, int]:
        """The billable counters in ``METRICS`` order."""
        return (
            self.requests,
            self.input_tokens,
            self.output_tokens,
            self.cache_read_input_tokens,
            self.cache_write_input_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_write_input_tokens
        )

    def counter_values(self) -> dict[str, int]:
        """Every counter (``COUNTERS``) by name."""
        return {name: getattr(self, name) for name in COUNTERS}

    def is_zero(self) -> bool:
        return not any(self.counter_values().values())


assert tuple(f.name for f in fields(UsageRow))[2:] == COUNTERS  # noqa: S101 - one list


def zero_counts() -> dict[str, int]:
    return dict.fromkeys(COUNTERS, 0)


def add_counts(into: dict[str, int], row: UsageRow | Mapping[str, int]) -> dict[str, int]:
    get = row.get if isinstance(row, Mapping) else (lambda n, _=0: getattr(row, n))
    for name in COUNTERS:
        into[name] += int(get(name, 0) or 0)
    return into


def with_total_tokens(counts: Mapping[str, int]) -> dict[str, int]:
    out = dict(counts)
    out["total_tokens"] = sum(int(counts[n]) for n in TOKEN_COUNTERS)
    return out


def merge_rows(rows: Iterable[UsageRow]) -> list[UsageRow]:
    """Sum rows that share a day and model (a source may split them); sorted, zeros dropped."""
    merged: dict[tuple[date, str], dict[str, int]] = {}
    for row in rows:
        add_counts(merged.setdefault((row.day, row.model), zero_counts()), row)
    out = [UsageRow(day, model, **counts) for (day, model), counts in merged.items()]
    return sorted((r for r in out if not r.is_zero()), key=lambda r: (r.day, r.model))


# ---- Grouping

GROUP_BY_CHOICES = ("day", "model", "day,model", "none")


def parse_group_by(text: str | None) -> str:
    """Normalise ``--group-by``: ``day``, ``model``, ``day,model`` (``model,day``), ``none``."""
    raw = (text or "day,model").strip().lower().replace(" ", "")
    parts = [p for p in raw.split(",") if p]
    if sorted(parts) == ["day", "model"]:
        return "day,model"
    if len(parts) == 1 and parts[0] in ("day", "model", "none"):
        return parts[0]
    raise InvalidInput(
        f"invalid --group-by {text!r}: expected one of {', '.join(GROUP_BY_CHOICES)}"
    )


@dataclass(frozen=True)
class GroupedUsage:
    """One row of a report: a customer's counts for a day and/or model (None = all)."""

    customer_id: str
    day: date | None
    model: str | None
    counts: dict[str, int]

    def to_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "day": self.day.isoformat() if self.day else None,
            "model": self.model,
            **with_total_tokens(self.counts),
        }


def group_rows(customer_id: str, rows: Iterable[UsageRow], group_by: str) -> list[GroupedUsage]:
    """Group one customer's rows; ``none`` gives one row (zeros included), others skip zeros."""
    group_by = parse_group_by(group_by)
    by_day = group_by in ("day", "day,model")
    by_model = group_by in ("model", "day,model")
    groups: dict[tuple[date | None, str | None], dict[str, int]] = {}
    for row in rows:
        key = (row.day if by_day else None, row.model if by_model else None)
        add_counts(groups.setdefault(key, zero_counts()), row)
    if group_by == "none" and not groups:
        groups[(None, None)] = zero_counts()
    out = [
        GroupedUsage(customer_id, day, model, counts)
        for (day, model), counts in groups.items()
        if group_by == "none" or any(counts.values())
    ]
    return sorted(out, key=lambda g: (g.day or date.min, g.model or ""))


def totals(rows: Iterable[UsageRow]) -> dict[str, int]:
    out = zero_counts()
    for row in rows:
        add_counts(out, row)
    return out


def daily_series(rows: Iterable[UsageRow], first: date, last: date) -> list[tuple[date, dict]]:
    """Counts per day over every day of the range, days without usage included (as zeros)."""
    series = {day: zero_counts() for day in iter_days(first, last)}
    for row in rows:
        if row.day in series:
            add_counts(series[row.day], row)
    return list(series.items())


# ---- Comparison (reconciliation)


@dataclass(frozen=True)
class Difference:
    """One counter that differs between the DynamoDB counters and the log."""

    customer_id: str
    day: date
    model: str
    counter: str
    counters_value: int
    log_value: int

    @property
    def difference(self) -> int:
        return self.counters_value - self.log_value

    def to_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "day": self.day.isoformat(),
            "model": self.model,
            "counter": self.counter,
            "counters_value": self.counters_value,
            "log_value": self.log_value,
            "difference": self.difference,
        }


def compare_rows(
    customer_id: str, counters: Iterable[UsageRow], log: Iterable[UsageRow]
) -> list[Difference]:
    """Every counter that differs, per day and model; a missing row counts as zeros."""
    left = {(r.day, r.model): r for r in merge_rows(counters)}
    right = {(r.day, r.model): r for r in merge_rows(log)}
    diffs = []
    for key in sorted(set(left) | set(right)):
        a = left[key].counter_values() if key in left else zero_counts()
        b = right[key].counter_values() if key in right else zero_counts()
        for name in COUNTERS:
            if a[name] != b[name]:
                diffs.append(Difference(customer_id, key[0], key[1], name, a[name], b[name]))
    return diffs


def row_from_counts(day: date, model: str, counts: Mapping[str, object]) -> UsageRow:
    return UsageRow(day, model, **{n: int(counts.get(n) or 0) for n in COUNTERS})


# ---- Customer ids
