"""Time to first byte through the proxy against the fake Bedrock's own, in the same run.

A stream request (``POST /model/{id}/invoke-with-response-stream``) goes to the fake
Bedrock directly and through the local proxy server (the real pipeline: token lookup,
admission in DynamoDB, the Bedrock call, the first event written out); each time is from
sending the request to the first byte of the answer's body. DynamoDB is moto's server on
loopback: its calls are counted per request and their time is measured (botocore's
before-call/after-call hooks), so the overhead is printed with and without it.

Run: ``PYTHONPATH=. python bench/bench_ttfb.py [--requests 200]``. Prints figures, asserts
nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from bedrock_billing.core.schema import TableNames  # noqa: E402
from bedrock_billing.fakebedrock import FakeBedrock  # noqa: E402
from bedrock_billing.proxy.config import ProxyConfig  # noqa: E402
from bedrock_billing.proxy.handler import Proxy  # noqa: E402
from bedrock_billing.proxy.prices import PriceTable  # noqa: E402
from bedrock_billing.sandbox.motoserver import MotoServer  # noqa: E402
from bedrock_billing.sandbox.proxy_server import ProxyServer  # noqa: E402
from tests.proxy_support import HAIKU, create_tables, put_customer, put_token  # noqa: E402

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
BODY = json.dumps({
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 60,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}],
}).encode()


def first_byte(port: int, path: str, headers: dict) -> tuple[float, float]:
    """When the request was sent and when the body's first byte came; then drains it."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    try:
        started = time.perf_counter()
        conn.request("POST", path, body=BODY, headers=headers)
        response = conn.getresponse()
        response.read(1)
        first = time.perf_counter()
        response.read()
        assert response.status == 200, response.status
        return started, first
    finally:
        conn.close()


class DynamoTimer:
    """Counts DynamoDB calls and their wall time, per thread (one request at a time here)."""

    def __init__(self, client):
        self.calls = 0
        self.timeline: list[tuple[float, float]] = []  # (end, duration) of each call
        self._local = threading.local()
        client.meta.events.register("before-call.dynamodb.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def _before(self, **_):
        self._local.started = time.perf_counter()

    def _after(self, **_):
        self.calls += 1
        end = time.perf_counter()
        self.timeline.append((end, end - self._local.started))

    def within(self, start: float, end: float) -> float:
        """DynamoDB time of the calls that ended between ``start`` and ``end``."""
        return sum(d for e, d in self.timeline if start <= e <= end)

    def reset(self):
        self.calls, self.timeline = 0, []


def ms(value: float) -> str:
    return f"{value * 1000:.2f} ms"


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request lines
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    moto = MotoServer().start()
    ddb = boto3.client("dynamodb", endpoint_url=moto.url, region_name="us-east-1", **CREDS)
    tables = TableNames.for_stage("ttfb" + uuid.uuid4().hex[:6])
    create_tables(ddb, tables)
    cid = put_customer(ddb, tables, daily_request_limit=10**9, monthly_token_limit=10**12)
    token = put_token(ddb, tables, cid)
    timer = DynamoTimer(ddb)
    with FakeBedrock(seed=1) as fake:
        bedrock = boto3.client(
            "bedrock-runtime", endpoint_url=fake.url, region_name="us-east-1",
            config=Config(signature_version="v4", retries={"total_max_attempts": 1}), **CREDS,
        )
        proxy = Proxy(
            ProxyConfig(tables=tables, prices=PriceTable.from_env({}), region="us-east-1"),
            dynamodb=ddb, bedrock_runtime=bedrock, log_sink=lambda line: None,
        )
        with ProxyServer(proxy) as server:
            direct_path = f"/model/{HAIKU}/invoke-with-response-stream"
            proxy_path = "/prod" + direct_path
            headers = {"Content-Type": "application/json"}
            auth = {**headers, "Authorization": f"Bearer {token}"}
            for _ in range(10):  # warm both: connections pools, the token cache
                first_byte(fake.port, direct_path, headers)
                first_byte(server.port, proxy_path, auth)
            timer.reset()
            direct, through, before_first, without_ddb = [], [], [], []
            for _ in range(args.requests):  # interleaved, so both see the same machine
                start, first = first_byte(fake.port, direct_path, headers)
                direct.append(first - start)
                start, first = first_byte(server.port, proxy_path, auth)
                through.append(first - start)
                on_path = timer.within(start, first)  # admission; the usage write is after
                before_first.append(on_path)
                without_ddb.append(first - start - on_path)
            calls = timer.calls
    moto.stop()
    n = args.requests
    fake_median = statistics.median(direct)
    proxy_median = statistics.median(through)
    print(f"requests: {n} streamed (invoke-with-response-stream), warm container, this machine")
    print(f"fake Bedrock's own TTFB, median:          {ms(fake_median)}")
    print(f"TTFB through the proxy, median:           {ms(proxy_median)}")
    print(f"added by the proxy, median:               {ms(proxy_median - fake_median)}")
    print(f"DynamoDB calls per request:               {calls / n:.2f} (1 before the first byte)")
    print(f"DynamoDB before the first byte, median:   {ms(statistics.median(before_first))}"
          " (moto's server on loopback)")
    added = statistics.median(without_ddb) - fake_median
    print(f"added, excluding DynamoDB, median:        {ms(added)}")


if __name__ == "__main__":
    main()
