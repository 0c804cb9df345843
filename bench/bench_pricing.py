"""Price a million usage rows and print rows/second (median of several runs).

Two shapes: 1,000 customers x 30 days x 33 models (990,000 rows, one draft each), and one
customer's 1,000,000 rows aggregated into one draft. Printed figures, not assertions.

    PYTHONPATH=. python bench/bench_pricing.py [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import date
from decimal import Decimal

from bedrock_billing.core.pricing import CreditGrant, parse_price_book, rate_period
from bedrock_billing.core.usage import UsageRow

BOOK = parse_price_book(
    """
default_plan = "bench"
[plans.bench]
base_fee = "49.00"
minimum = "100.00"
discounts = [{ type = "fixed", amount = "5.00" }, { type = "percent", percent = "10" }]
[[plans.bench.charges]]
type = "per_token"
markup = "20"
[[plans.bench.charges]]
type = "graduated"
metric = "requests"
tiers = [{ up_to = 1000, price = "0" }, { up_to = 100000, price = "0.001" }, { price = "0.0005" }]
[[plans.bench.charges]]
type = "volume"
metric = "tokens"
model = "anthropic.claude-sonnet-4-20250514-v1:0"
tiers = [{ up_to = 1000000, price = "0" }, { price = "0.0000001" }]
""",
    "bench",
)


def models(count: int) -> list[str]:
    known = BOOK.known_models()
    return [known[i] if i < len(known) else f"custom.model-{i}" for i in range(count)]


def customer_rows(rng: random.Random, days: int, model_ids: list[str]) -> list[UsageRow]:
    return [
        UsageRow(
            date(2025, 6, d),
            m,
            rng.randrange(500),
            rng.randrange(10**6),
            rng.randrange(10**5),
            rng.randrange(10**4),
            rng.randrange(10**3),
        )  # fmt: skip
        for d in range(1, days + 1)
        for m in model_ids
    ]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--customers", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(42)
    grants = [CreditGrant("prepaid", Decimal("50.00"), date(2025, 1, 1))]

    model_ids = models(33)
    per_customer = [customer_rows(rng, 30, model_ids) for _ in range(args.customers)]
    total_rows = sum(len(r) for r in per_customer)

    def many_customers():
        for i, rows in enumerate(per_customer):
            rate_period(BOOK, "2025-06", rows, grants=grants, customer_id=str(i)).to_dict()

    # One customer, a million rows (e.g. many keys per day folded into daily rows).
    big = [row for rows in per_customer for row in rows][:1_000_000]
    while len(big) < 1_000_000:
        big.extend(big[: 1_000_000 - len(big)])

    def one_customer():
        rate_period(BOOK, "2025-06", big, grants=grants).to_dict()

    # Baseline, timed in the same runs: only summing each row's counts into a dict per
    # model, the least any pricing must do. The ratio holds up on a noisy shared machine.
    def baseline(rows_lists):
        for rows in rows_lists:
            totals: dict[str, list[int]] = {}
            for row in rows:
                acc = totals.setdefault(row.model, [0, 0, 0, 0, 0])
                for i, value in enumerate(row.counts()):
                    acc[i] += value

    for label, fn, base, n in (
        (f"{args.customers} customers x 30 days x 33 models", many_customers,
         lambda: baseline(per_customer), total_rows),
        ("1 customer, 1,000,000 rows aggregated", one_customer, lambda: baseline([big]),
         len(big)),
    ):  # fmt: skip
        runs = [(timed(fn), timed(base)) for _ in range(args.runs)]
        median = statistics.median(t for t, _ in runs)
        ratio = statistics.median(t / b for t, b in runs)
        print(
            f"{label}: {n:,} rows, median {median:.2f} s over {args.runs} runs, "
            f"{n / median:,.0f} rows/s, x{ratio:.1f} the time of only summing the rows"
        )


if __name__ == "__main__":
    main()
