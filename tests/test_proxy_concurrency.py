"""Concurrency: two proxy processes, each serving with threads, share moto's server and the
fake Bedrock; 300 requests from 32 threads at a daily limit of 100 admit exactly 100.

Nothing in the proxy locks around admission: DynamoDB's conditional update decides.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import boto3
import pytest
import requests

from bedrock_billing.core.schema import TableNames, day_attribute, meter_key
from bedrock_billing.fakebedrock import FakeBedrock
from tests.proxy_support import (
    HAIKU,
    claude_body,
    create_tables,
    put_customer,
    put_token,
    usage_items,
)

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_proxy(stage: str, moto_url: str, bedrock_url: str) -> tuple[subprocess.Popen, str]:
    env = {
        **os.environ,
        "PYTHONPATH": ROOT,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bedrock_billing.sandbox.proxy_server",
            "--port",
            "0",
            "--stage",
            stage,
            "--region",
            "us-east-1",
            "--dynamodb-endpoint",
            moto_url,
            "--bedrock-endpoint",
            bedrock_url,
            "--log-file",
            os.devnull,
        ],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    first = proc.stdout.readline()
    return proc, json.loads(first)["url"]


@pytest.fixture
def two_proxies(moto_server, aws_credentials):
    stage = "cc" + uuid.uuid4().hex[:8]
    with FakeBedrock(seed=3) as fake:
        procs = [start_proxy(stage, moto_server, fake.url) for _ in range(2)]
        try:
            yield stage, [url for _, url in procs], fake
        finally:
            for proc, _ in procs:
                proc.terminate()
                proc.wait(timeout=10)


def test_300_requests_from_32_threads_over_two_processes_admit_exactly_the_daily_limit(
    moto_server, two_proxies
):
    stage, urls, fake = two_proxies
    ddb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1", **CREDS)
    tables = TableNames.for_stage(stage)
    create_tables(ddb, tables)
    cid = put_customer(ddb, tables, daily_request_limit=100)
    token = put_token(ddb, tables, cid)
    body = claude_body("Hello")
    sessions = {}

    def one(n: int) -> int:
        session = sessions.setdefault(n % 32, requests.Session())
        response = session.post(
            urls[n % 2] + "/prod/bedrock",
            json=body,
            timeout=60,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.headers["Content-Type"] == "application/json"
        return response.status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(one, range(300)))

    assert statuses.count(200) == 100
    assert statuses.count(429) == 200
    now = datetime.now(UTC)
    items = usage_items(ddb, tables, cid)
    assert items[meter_key(now)][day_attribute(now)] == 100
    assert len(fake.calls) == 100  # refused requests never reached Bedrock
    day = items[f"DAY#{now.date().isoformat()}#{HAIKU}"]
    assert day["requests"] == 100 and day["refused"] == 200


def test_300_requests_over_three_keys_admit_exactly_the_customers_daily_limit(
    moto_server, two_proxies
):
    """Three named keys of one customer (one with its own daily limit of 40) share the
    customer's limit of 100 atomically: exactly 100 admitted, the limited key never over
    its 40, and every key slot taken for a request the customer's meter refused is given
    back."""
    from bedrock_billing.core.schema import key_day_key
    from bedrock_billing.services import keys as key_svc
    from bedrock_billing.settings import resolve_settings

    stage, urls, fake = two_proxies
    ddb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1", **CREDS)
    tables = TableNames.for_stage(stage)
    create_tables(ddb, tables)
    cid = put_customer(ddb, tables, daily_request_limit=100)
    settings = resolve_settings(stage=stage, endpoint_url=moto_server, region="us-east-1")
    keys = [
        key_svc.create_key(settings, cid, name="a"),
        key_svc.create_key(settings, cid, name="b"),
        key_svc.create_key(settings, cid, name="c", daily_limit="40"),
    ]
    body = claude_body("Hello")
    sessions = {}

    def one(n: int) -> tuple[int, int]:
        session = sessions.setdefault(n % 32, requests.Session())
        key = keys[n % 3]
        response = session.post(
            urls[n % 2] + "/prod/bedrock",
            json=body,
            timeout=60,
            headers={"Authorization": f"Bearer {key['token']}"},
        )
        return n % 3, response.status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(one, range(300)))

    statuses = [status for _, status in results]
    assert statuses.count(200) == 100 and statuses.count(429) == 200
    admitted = [sum(1 for k, s in results if k == i and s == 200) for i in range(3)]
    assert sum(admitted) == 100 and admitted[2] <= 40
    now = datetime.now(UTC)
    items = usage_items(ddb, tables, cid)
    assert items[meter_key(now)][day_attribute(now)] == 100
    assert len(fake.calls) == 100
    for i, key in enumerate(keys):
        counters = items[key_day_key(key["key_id"], now)]
        assert counters.get("requests", 0) == admitted[i]  # usage per key = what it was served
    limited = items[key_day_key(keys[2]["key_id"], now)]
    assert limited["admitted"] == admitted[2]  # no slot leaked by a refusal at the meter
