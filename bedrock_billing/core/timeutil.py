"""Time in one place: UTC instants, injectable clocks, dates, durations and billing periods.

Conventions (docs/design): everything is UTC; a period is a calendar month ``YYYY-MM``
from the 1st 00:00Z to the next 1st; a date given as an expiry means the end of that
UTC day; code asks a clock for the time so tests move time instead of sleeping.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from .errors import InvalidInput

Clock = Callable[[], datetime]
"""A clock is any callable returning an aware UTC datetime."""


def system_clock() -> datetime:
    return datetime.now(UTC)


class FixedClock:
    """A clock for tests: returns ``now`` until moved with :meth:`advance` or :meth:`set`."""

    def __init__(self, now: datetime | str):
        self.now = parse_instant(now) if isinstance(now, str) else now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | str) -> datetime:
        self.now = self.now + (parse_duration(delta) if isinstance(delta, str) else delta)
        return self.now

    def set(self, now: datetime | str) -> datetime:
        self.now = parse_instant(now) if isinstance(now, str) else now.astimezone(UTC)
        return self.now


def epoch_seconds(instant: datetime) -> int:
    return int(instant.timestamp())


def monotonic_ms() -> float:
    return time.perf_counter() * 1000.0


def iso_z(instant: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the second (or millisecond when it has them)."""
    if instant is None:
        return None
    instant = instant.astimezone(UTC)
    if instant.microsecond:
        return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; naive values are taken as UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise InvalidInput(f"invalid timestamp {text!r}: expected ISO 8601") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_date(text: str, what: str = "date") -> date:
    """Parse ``YYYY-MM-DD`` strictly."""
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text.strip()):
        raise InvalidInput(f"invalid {what} {text!r}: expected YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"invalid {what} {text!r}: no such day") from None


def end_of_day(day: date) -> datetime:
    """The last instant of a UTC day (an expiry date means the end of that day)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1, microseconds=-1)


# ASCII digits only: str.isdigit() and \d also take '²' or '٣', which int() refuses or reads.
_DURATION = re.compile(r"^\s*([0-9]+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """Parse ``90d``, ``24h``, ``30m``, ``45s``, ``2w``; a bare number is seconds."""
    if isinstance(text, timedelta):
        return text
    raw = str(text).strip().lower()
    if raw.isascii() and raw.isdigit():
        return timedelta(seconds=int(raw))
    match = _DURATION.match(raw)
    if not match:
        raise InvalidInput(
            f"invalid duration {text!r}: expected a number and a unit, such as 90d, 24h, 30m"
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True, order=True)
class Period:
    """A billing period: one calendar month in UTC."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", str(text).strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise InvalidInput(f"invalid period {text!r}: expected YYYY-MM")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date | datetime) -> Period:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive end: the next period's start."""
        return self.next().start

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def days(self) -> Iterator[date]:
        return iter_days(self.first_day, self.last_day)


def iter_days(start: date, end: date) -> Iterator[date]:
    """Every day from ``start`` to ``end``, both included."""
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def resolve_date_range(
    start: str | None, end: str | None, period: str | None, clock: Clock = system_clock
) -> tuple[date, date]:
    """The inclusive UTC date range of a report: ``--period``, or start/end, else month to date."""
    if period and (start or end):
        raise InvalidInput("give either --period or --start-date/--end-date, not both")
    if period:
        p = Period.parse(period)
        return p.first_day, p.last_day
    today = clock().date()
    first = parse_date(start, "start date") if start else today.replace(day=1)
    last = parse_date(end, "end date") if end else today
    check_date_range(first, last)
    return first, last


# A report holds one entry per day of its range (and reads every day's counters or log
# partitions): a year, leap day included, keeps it a few hundred kilobytes. Longer spans
# are several reports (or a query of the usage log in Athena).
MAX_RANGE_DAYS = 366


def check_date_range(first: date, last: date) -> None:
    if last < first:
        raise InvalidInput(f"end date {last} is before start date {first}")
    days = (last - first).days + 1
    if days > MAX_RANGE_DAYS:
        raise InvalidInput(
            f"the range {first} to {last} is {days} days: at most {MAX_RANGE_DAYS} per report"
        )
