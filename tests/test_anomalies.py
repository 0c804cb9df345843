"""Anomaly detection on generated histories: 60 days of 50 customers, with and without
planted spikes (usage, new models, error rates)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from bedrock_billing.core import anomalies
from bedrock_billing.core.usage import UsageRow

START = date(2026, 9, 1)
DAYS = 60
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
OTHER = "anthropic.claude-3-sonnet-20240229-v1:0"


def history(seed: int, *, spikes: int = 0, new_models: int = 0, error_spikes: int = 0):
    """Per customer: weekday/weekend rhythm, +/-50% day-to-day noise, a few idle days,
    customers of very different sizes; then planted anomalies, returned with it."""
    rnd = random.Random(seed)
    data: dict[str, dict[date, UsageRow]] = {}
    for c in range(50):
        cid = f"cust-{c:02d}"
        base = rnd.choice([60, 200, 1_000, 5_000])  # requests on a weekday
        per_request = rnd.choice([300, 800, 2_000])
        rows = {}
        for n in range(DAYS):
            day = START + timedelta(days=n)
            if rnd.random() < 0.05:
                continue  # an idle day
            rhythm = 0.5 if day.weekday() >= 5 else 1.0
            requests = max(1, int(base * rhythm * rnd.uniform(0.6, 1.5)))
            errors = int(requests * rnd.uniform(0, 0.02))
            rows[day] = UsageRow(
                day, MODEL, requests, requests * per_request // 2, requests * per_request // 2,
                errors=errors,
            )  # fmt: skip
        data[cid] = rows
    planted = set()
    customers = sorted(data)
    checkable = [START + timedelta(days=n) for n in range(anomalies.WINDOW_DAYS, DAYS)]
    for _ in range(spikes):
        cid, day = rnd.choice(customers), rnd.choice(checkable)
        # Five to ten times a usual weekday of this customer (the last one before the day).
        usual = max((d for d in data[cid] if d < day and d.weekday() < 5), default=None)
        row = data[cid][usual]
        factor = rnd.randint(5, 10)
        data[cid][day] = UsageRow(
            day, MODEL, row.requests * factor, row.input_tokens * factor,
            row.output_tokens * factor, errors=row.errors,
        )  # fmt: skip
        planted.add((cid, day, anomalies.SPIKE))
    extra: dict[str, list[UsageRow]] = {c: [] for c in customers}
    for _ in range(new_models):
        cid, day = rnd.choice(customers), rnd.choice(checkable)
        extra[cid].append(UsageRow(day, OTHER, 3, 100, 100))
        planted.add((cid, day, anomalies.NEW_MODEL))
    for _ in range(error_spikes):
        cid, day = rnd.choice(customers), rnd.choice(checkable)
        row = data[cid].get(day) or UsageRow(day, MODEL, 60, 1, 1)
        data[cid][day] = UsageRow(
            day, MODEL, row.requests, row.input_tokens, row.output_tokens,
            errors=max(anomalies.ERROR_FLOOR, row.requests // 2),
        )  # fmt: skip
        planted.add((cid, day, anomalies.ERROR_SPIKE))
    rows = {cid: list(data[cid].values()) + extra[cid] for cid in customers}
    return rows, planted, checkable


def flagged(rows, days) -> set:
    found = set()
    for day in days:
        for a in anomalies.detect(rows, day):
            found.add((a.customer_id, a.day, a.kind))
    return found


def test_no_customer_is_flagged_in_a_history_without_spikes():
    for seed in range(3):
        rows, planted, days = history(seed)
        assert planted == set()
        assert flagged(rows, days) == set(), seed


def test_every_planted_spike_is_found():
    rows, planted, days = history(7, spikes=12, new_models=5, error_spikes=5)
    assert len(planted) >= 18
    found = flagged(rows, days)
    assert planted <= found
    # Nothing else but the days after a planted new model (it is not new the next day)
    # and the planted days themselves.
    assert {(c, d) for c, d, _ in found} <= {(c, d) for c, d, _ in planted}


def test_a_new_customer_has_no_baseline_and_is_not_flagged():
    day = START + timedelta(days=3)
    rows = {"new": [UsageRow(START + timedelta(days=n), MODEL, 10 * 10**n, 10**6, 10**6)
                    for n in range(4)]}  # fmt: skip
    assert anomalies.detect(rows, day) == []


def test_small_absolute_jumps_are_not_spikes():
    rows = {"tiny": [UsageRow(START + timedelta(days=n), MODEL, 3, 50, 50) for n in range(14)]}
    rows["tiny"].append(UsageRow(START + timedelta(days=14), MODEL, 12, 200, 200))
    assert anomalies.detect(rows, START + timedelta(days=14)) == []
