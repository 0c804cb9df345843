"""`anomalies`: read the counters of every customer for the window, run the core rule,
and, when asked (the daily run), send each finding as an ``anomaly.detected`` event."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from ..core import alerts
from ..core.anomalies import WINDOW_DAYS, detect
from ..core.errors import InvalidInput
from ..core.timeutil import Clock, Period, parse_date, system_clock
from ..stores.usage_counters import scan_customer_ids
from .usage_sources import counter_store


def find_anomalies(
    settings,
    *,
    day: str | None = None,
    period: str | None = None,
    window: int = WINDOW_DAYS,
    notify: bool = False,
    clock: Clock = system_clock,
    notifier=None,
) -> dict[str, Any]:
    """Anomalies of ``day`` (default: yesterday, the last complete UTC day), or of every
    complete day of ``period`` (YYYY-MM)."""
    if not 7 <= window <= 90:
        raise InvalidInput("--window must be 7 to 90 days")
    if day and period:
        raise InvalidInput("give --day or --period, not both")
    yesterday = clock().date() - timedelta(days=1)
    if period:
        month = Period.parse(period)
        days = [d for d in month.days() if d <= yesterday]
        if not days:
            raise InvalidInput(f"period {month} has no complete day yet")
    else:
        days = [parse_date(day, "--day") if day else yesterday]
    checked: date = days[-1]
    ids = scan_customer_ids(settings.client("dynamodb"), settings.tables.customers)
    history = counter_store(settings).read_usage(days[0] - timedelta(days=window), checked, ids)
    found = [a.as_dict() for d in days for a in detect(history, d, window)]
    sent = 0
    if notify and found:
        if notifier is None:
            from .notifications import notifier_for

            notifier = notifier_for(settings)
        for anomaly in found:
            notifier.send(alerts.ANOMALY_DETECTED, anomaly["customer_id"], anomaly)
            sent += 1
    return {
        "first_date": days[0].isoformat(),
        "date": checked.isoformat(),
        "window_days": window,
        "customers_checked": len(ids),
        "anomalies": found,
        "count": len(found),
        "events_sent": sent,
    }
