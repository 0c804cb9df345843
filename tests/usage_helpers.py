"""Generated usage for the usage/reconcile tests: log lines and the counters they imply.

The expected counters are folded here in plain Python, independently of the SQL, so the
counters and the log (through the local engine) are both checked against a third answer.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import boto3

from bedrock_billing.core.logschema import COUNTED_REFUSAL_CODES
from bedrock_billing.core.schema import TableNames, day_key
from bedrock_billing.core.timeutil import FixedClock, iso_z
from bedrock_billing.core.usage import COUNTERS, UsageRow
from tests.aws_helpers import create_tables

MODELS = (
    "anthropic.claude-3-haiku-20240307-v1:0",
    "amazon.nova-lite-v1:0",
    "meta.llama3-8b-instruct-v1:0",
)
REGION = "us-east-1"
NAMES = TableNames.for_stage("test")


@dataclass
class Generated:
    customers: list[str]
    idle_customer: str
    lines: list[tuple[datetime, dict]] = field(default_factory=list)  # (arrival, line)
    expected: dict[str, dict[tuple[date, str], dict[str, int]]] = field(default_factory=dict)

    def expected_rows(self, customer_id: str, first: date, last: date) -> list[UsageRow]:
        got = self.expected.get(customer_id, {})
        return sorted(
            (UsageRow(d, m, **c) for (d, m), c in got.items() if first <= d <= last),
            key=lambda r: (r.day, r.model),
        )


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def generate(
    seed: int = 7,
    days: tuple[date, date] = (date(2026, 9, 27), date(2026, 10, 4)),
    customers: int = 3,
    quiet_days: tuple[date, ...] = (date(2026, 9, 29),),
) -> Generated:
    """Several customers, models and days; a month boundary; quiet days; an idle customer."""
    rng = random.Random(seed)
    ids = [_uuid(rng) for _ in range(customers)]
    gen = Generated(customers=ids, idle_customer=_uuid(rng))
    day = days[0]
    while day <= days[1]:
        if day not in quiet_days:
            for cid in ids:
                for _ in range(rng.randint(0, 6)):
                    _one(gen, rng, cid, day)
            # a line with no customer (unrecognised token) counts for nobody, and so does
            # a refusal that is not at a limit (DynamoDB unavailable at admission)
            _one(gen, rng, None, day, event="proxy_refused")
            _one(gen, rng, rng.choice(ids), day, event="proxy_refused", uncounted=True)
        day += timedelta(days=1)
    return gen


def _one(
    gen: Generated,
    rng: random.Random,
    cid,
    day: date,
    event: str | None = None,
    uncounted: bool | None = None,
) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    # A share of requests right before midnight: they arrive in the next day's partition.
    if rng.random() < 0.25:
        at = start + timedelta(days=1, seconds=-rng.randint(1, 20))
    else:
        at = start + timedelta(seconds=rng.randint(0, 86_399 - 60))
    event = (
        event
        or rng.choices(["bedrock_invoke", "proxy_refused", "bedrock_error"], weights=[8, 1, 1])[0]
    )
    model = rng.choice(MODELS)
    line = {
        "timestamp": iso_z(at.replace(microsecond=rng.randint(0, 999) * 1000)),
        "event_type": event,
        "request_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "customer_id": cid,
        "model_id": model,
        "foundation_model": model,
        "api": "invoke",
        "streamed": False,
        "status": 200,
    }
    counts = dict.fromkeys(COUNTERS, 0)
    if event == "bedrock_invoke":
        tokens = {
            "input_tokens": rng.randint(1, 5000),
            "output_tokens": rng.randint(0, 2000),
            "cache_read_input_tokens": rng.choice([0, 0, rng.randint(1, 900)]),
            "cache_write_input_tokens": rng.choice([0, 0, rng.randint(1, 300)]),
        }
        estimated = rng.random() < 0.1
        line.update(tokens, token_count=sum(tokens.values()), usage_estimated=estimated)
        counts.update(tokens, requests=1, estimated=int(estimated))
    elif (
        event == "proxy_refused"
        and cid is not None
        and (uncounted if uncounted is not None else rng.random() < 0.3)
    ):
        # Refused after auth but not at a limit (DynamoDB down at admission): logged,
        # counted for no one, as the proxy does.
        line.update(status=503, error_code="service_unavailable")
    elif event == "proxy_refused":
        line.update(status=429, error_code=rng.choice(COUNTED_REFUSAL_CODES))
        if cid is None:  # an unrecognised token: no customer, maybe no model either
            line.update(status=401, error_code="invalid_token", foundation_model=None)
        counts["refused"] = 1
    else:
        line.update(status=502, error_code="bedrock_error")
        counts["errors"] = 1
    arrival = at + timedelta(seconds=rng.randint(1, 90))
    gen.lines.append((arrival, line))
    if cid is not None and any(counts.values()):
        slot = gen.expected.setdefault(cid, {}).setdefault(
            (at.date(), model), dict.fromkeys(COUNTERS, 0)
        )
        for name, value in counts.items():
            slot[name] += value


def write_local_log(gen: Generated, root) -> None:
    from bedrock_billing.stores.logsink import LocalLogSink

    clock = FixedClock("2026-01-01T00:00:00Z")
    sink = LocalLogSink(root, clock=clock)
    for arrival, line in sorted(gen.lines, key=lambda x: x[0]):
        clock.set(arrival)
        sink.write(line)


def write_s3_log(gen: Generated, s3, bucket: str, prefix: str = "logs/", batch: int = 5) -> None:
    from bedrock_billing.stores.logsink import S3LogSink

    clock = FixedClock("2026-01-01T00:00:00Z")
    sink = S3LogSink(s3, bucket, prefix, clock=clock, batch_size=batch)
    for arrival, line in sorted(gen.lines, key=lambda x: x[0]):
        clock.set(arrival)
        sink.write(line)
    sink.flush()


def counter_items(gen: Generated) -> list[dict]:
    items = []
    for cid, slots in gen.expected.items():
        for (day, model), counts in slots.items():
            item = {"customer_id": {"S": cid}, "sk": {"S": day_key(day, model)}}
            item.update({n: {"N": str(v)} for n, v in counts.items()})
            items.append(item)
    return items


def customer_items(ids: list[str]) -> list[dict]:
    return [
        {"customer_id": {"S": cid}, "name": {"S": f"c{i}"}, "status": {"S": "active"}}
        for i, cid in enumerate(ids)
    ]


def batch_put(ddb, table: str, items: list[dict]) -> int:
    """BatchWriteItem in chunks of 25, retrying unprocessed items; returns the call count."""
    calls = 0
    for i in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": it}} for it in items[i : i + 25]]}
        while request:
            calls += 1
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or None
    return calls


def seed_dynamodb(gen: Generated, ddb) -> None:
    create_tables(ddb, NAMES)
    batch_put(ddb, NAMES.usage, counter_items(gen))
    batch_put(ddb, NAMES.customers, customer_items([*gen.customers, gen.idle_customer]))


def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


class CallCounter:
    """Counts AWS API calls made through a client (botocore's before-call event)."""

    def __init__(self, client, service: str):
        self.calls: list[str] = []
        client.meta.events.register(f"before-call.{service}", self._seen)

    def _seen(self, model, **_):
        self.calls.append(model.name)

    def count(self, name: str | None = None) -> int:
        return len(self.calls) if name is None else self.calls.count(name)
