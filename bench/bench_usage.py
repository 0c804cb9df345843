"""Benchmark: ``usage --all`` over the DynamoDB counters of many customers (moto, in process).

Seeds N customers and their DAY# items with BatchWriteItem, then builds the report for a
period and prints the AWS calls made (one Query per customer, one Scan page per 1 MB of
customers) and the time. Run: PYTHONPATH=. python bench/bench_usage.py [--customers 1000]

The call count is the figure that carries over to AWS. The time is moto's: moto sorts the
whole table on every Query (moto/dynamodb/models/table.py ``all_items``), about 20 ms per
1,000 items in the table, so the defaults keep the table small (one day, one model);
``--days 31 --models 2`` is a realistic month but takes moto tens of minutes.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
for _var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)

from moto import mock_aws  # noqa: E402

from bedrock_billing.core.schema import day_key  # noqa: E402
from bedrock_billing.core.timeutil import FixedClock, Period  # noqa: E402
from bedrock_billing.core.usage import COUNTERS  # noqa: E402
from bedrock_billing.services.usage_reports import usage_report  # noqa: E402
from bedrock_billing.stores.usage_counters import CounterStore, scan_customer_ids  # noqa: E402
from tests.usage_helpers import (  # noqa: E402
    MODELS,
    NAMES,
    batch_put,
    create_tables,
    customer_items,
    session,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1, help="days with usage in the period")
    parser.add_argument("--models", type=int, default=1, help="models used per customer and day")
    parser.add_argument("--period", default="2026-10")
    args = parser.parse_args()
    period = Period.parse(args.period)
    rng = random.Random(1)

    with mock_aws():
        ddb = session().client("dynamodb")
        create_tables(ddb)
        ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(args.customers)]
        items = []
        for cid in ids:
            for d in range(min(args.days, (period.last_day - period.first_day).days + 1)):
                day = period.first_day + timedelta(days=d)
                for model in MODELS[: args.models]:
                    item = {"customer_id": {"S": cid}, "sk": {"S": day_key(day, model)}}
                    item.update({n: {"N": str(rng.randint(0, 500))} for n in COUNTERS})
                    items.append(item)
        t0 = time.perf_counter()
        seed_calls = batch_put(ddb, NAMES.usage, items)
        seed_calls += batch_put(ddb, NAMES.customers, customer_items(ids))
        seed_s = time.perf_counter() - t0

        calls: Counter[str] = Counter()
        ddb.meta.events.register(
            "before-call.dynamodb", lambda model, **_: calls.update([model.name])
        )
        ticks = []
        t0 = time.perf_counter()
        customer_ids = scan_customer_ids(ddb, NAMES.customers)
        report = usage_report(
            CounterStore(ddb, NAMES.usage),
            customer_ids,
            period.first_day,
            period.last_day,
            all_customers=True,
            group_by="day,model",
            clock=FixedClock(period.end + timedelta(days=1)),
            progress=lambda done, total, _msg: ticks.append(done),
        )
        report_s = time.perf_counter() - t0
        report.to_dict()

    print(f"seeded {len(items)} DAY# items and {len(ids)} customers: "
          f"{seed_calls} BatchWriteItem calls, {seed_s:.1f} s")  # fmt: skip
    print(f"usage --all --period {period}: {len(customer_ids)} customers, "
          f"{len(report.rows)} rows, {report.totals['requests']} requests")  # fmt: skip
    print(f"  DynamoDB calls: {dict(calls)} (total {sum(calls.values())})")
    print(f"  progress callbacks: {len(ticks)}")
    print("  (time is moto's: it sorts the whole table on each Query; AWS does not)")
    print(
        f"  time: {report_s:.2f} s ({1000 * report_s / max(1, len(customer_ids)):.2f} ms/customer)"
    )
    assert calls["Query"] == len(customer_ids), "expected one Query per customer"
    assert report.to_dict()["daily"][0]["day"] == date(period.year, period.month, 1).isoformat()


if __name__ == "__main__":
    main()
