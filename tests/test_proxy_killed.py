"""No admitted request vanishes (issue 13, item 1, acceptance): the local proxy runner, a
real process, is killed with SIGKILL while a slow stream is in flight, as Lambda kills a
function at its timeout. The request has taken its daily slot and Bedrock is generating,
but no counter and no outcome line will ever be written: only the admission line, written
before the Bedrock call, remains. ``reconcile`` reports it as abandoned, with its customer
and model, and exits with the difference code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import boto3
import pytest
import requests

from bedrock_billing.core.schema import TableNames, log_bucket_name
from bedrock_billing.fakebedrock import FakeBedrock
from bedrock_billing.fakebedrock.faults import SLOW_STREAM
from bedrock_billing.stores.logsink import S3LogSink, write_sandbox_marker
from tests.cli_helpers import run
from tests.proxy_support import HAIKU, claude_body, create_tables, put_customer, put_token

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_proxy(stage: str, moto_url: str, bedrock_url: str, log_file) -> tuple:
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "bedrock_billing.sandbox.proxy_server", "--port", "0",
            "--stage", stage, "--region", "us-east-1", "--dynamodb-endpoint", moto_url,
            "--bedrock-endpoint", bedrock_url, "--log-file", str(log_file),
        ],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )  # fmt: skip
    return proc, json.loads(proc.stdout.readline())["url"]


@pytest.fixture
def killed_mid_stream(moto_server, aws_credentials, tmp_path):
    """A customer's slow stream, the proxy killed after its first event arrived."""
    stage = "kd" + uuid.uuid4().hex[:8]
    ddb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1", **CREDS)
    tables = TableNames.for_stage(stage)
    create_tables(ddb, tables)
    cid = put_customer(ddb, tables, daily_request_limit=10)
    token = put_token(ddb, tables, cid)
    log_file = tmp_path / "proxy.jsonl"
    with FakeBedrock(seed=7) as fake:
        fake.slow_stream_interval = 0.2  # 40 events: about 8 s, far longer than the test
        proc, url = start_proxy(stage, moto_server, fake.url, log_file)
        try:
            body = {k: v for k, v in claude_body(f"{SLOW_STREAM} Tell me").items()}
            del body["modelId"]
            path = f"/prod/model/{quote(HAIKU, safe='')}/invoke-with-response-stream"
            with requests.post(
                url + path, json=body, stream=True, timeout=30,
                headers={"Authorization": f"Bearer {token}"},
            ) as response:  # fmt: skip
                assert response.status_code == 200
                next(response.iter_content(chunk_size=None))  # the stream is under way
                os.kill(proc.pid, signal.SIGKILL)  # as Lambda ends a function at its timeout
                assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            proc.stdout.close()
    lines = [json.loads(text) for text in log_file.read_text().splitlines()]
    return stage, cid, lines


def test_a_killed_proxy_leaves_an_abandoned_request_that_reconcile_reports(
    killed_mid_stream, moto_server
):
    stage, cid, lines = killed_mid_stream
    # Only the admission line was written: no outcome, no usage counter.
    assert [line["event_type"] for line in lines] == ["proxy_admitted"]
    (admitted,) = lines
    # Ship the log as the deployment's pipeline does, to the bucket the CLI reads.
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1", **CREDS)
    bucket = log_bucket_name(stage, "bedrock-billing", "123456789012", "us-east-1")
    s3.create_bucket(Bucket=bucket)
    write_sandbox_marker(s3, bucket)
    sink = S3LogSink(s3, bucket, "logs/")
    for line in lines:
        sink.write(line)
    sink.flush()

    today = datetime.now(UTC).date().isoformat()
    common = ["--stage", stage, "--endpoint-url", moto_server, "--start-date", today]
    result = run("reconcile", *common, "--end-date", today, "-o", "json", expect=5)
    report = json.loads(result.stdout)
    assert report["totals"]["differences"] == 0  # the counters and the usage lines agree...
    (abandoned,) = report["abandoned"]  # ...but AWS may have billed this one
    assert abandoned["customer_id"] == cid and abandoned["model"] == HAIKU
    assert abandoned["request_id"] == admitted["request_id"]
    assert abandoned["max_tokens"] == 100 and abandoned["request_bytes"] > 0
    assert abandoned["reason"] == "abandoned: AWS may have billed it"
    assert report["totals"]["abandoned"] == 1

    table = run("reconcile", *common, "--end-date", today, expect=5)
    assert "abandoned: AWS may have billed it" in table.stderr and cid in table.stderr
    assert "Abandoned requests" in table.stdout
