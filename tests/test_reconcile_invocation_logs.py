"""reconcile --against invocation-logs on the sandbox: the proxy's log against the
invocation records the fake Bedrock writes, as Bedrock would, for every call it serves.

Each test starts its own sandbox on a stage of its own: the month's reconcile reads
everything the installation served, and moto's backends are shared by every server in a
process, so another test's traffic (faults, truncated streams) must be another
installation's (its own tables, bucket and request-metadata tag).
"""

from __future__ import annotations

import gzip
import http.client
import json
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config

from bedrock_billing.core.invocationlog import CUSTOMER_KEY, INSTALLATION_KEY, REQUEST_KEY
from bedrock_billing.services.customers import create_customer
from bedrock_billing.services.usage_reports import usage_report
from bedrock_billing.services.usage_sources import counter_store
from tests.cli_helpers import run
from tests.sandbox_support import log_lines

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
CLAUDE = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 60,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
}


@pytest.fixture
def box(monkeypatch):
    from bedrock_billing.sandbox.runner import Sandbox

    stage = "il-" + uuid.uuid4().hex[:8]
    with Sandbox(port=0, tls_port=0, stage=stage) as sandbox:
        monkeypatch.setenv("BEDROCK_BILLING_ENDPOINT_URL", sandbox.aws_endpoint_url)
        monkeypatch.setenv("BEDROCK_BILLING_REGION", sandbox.region)
        monkeypatch.setenv("BEDROCK_BILLING_STAGE", sandbox.stage)
        yield sandbox


def _customer(box) -> tuple[str, str]:
    made = create_customer(box.settings(), name="Acme", email="ops@acme.example")
    return made["customer_id"], made["token"]


def _client(box, token, monkeypatch):
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", token)
    # A session of its own: boto3's default session keeps the first token it read.
    return boto3.Session().client(
        "bedrock-runtime",
        region_name=box.region,
        endpoint_url=box.bedrock_endpoint_url,
        verify=box.ca_bundle,
        config=Config(proxies={}, retries={"total_max_attempts": 1}),
    )


def _traffic(box, token, monkeypatch) -> None:
    """All four operations, a refusal-free error, through the proxy."""
    client = _client(box, token, monkeypatch)
    client.invoke_model(modelId=HAIKU, body=json.dumps(CLAUDE))
    stream = client.invoke_model_with_response_stream(modelId=HAIKU, body=json.dumps(CLAUDE))
    for _ in stream["body"]:
        pass
    messages = [{"role": "user", "content": [{"text": "Hello"}]}]
    client.converse(modelId=HAIKU, messages=messages, requestMetadata={"team": "blue"})
    for _ in client.converse_stream(modelId=HAIKU, messages=messages)["stream"]:
        pass
    throttled = [{"role": "user", "content": [{"text": "[[fake:throttling]]"}]}]
    with pytest.raises(client.exceptions.ThrottlingException):
        client.converse(modelId=HAIKU, messages=throttled)
    box.log_sink.flush()


def _reconcile(box, *extra, expect):
    period = box.clock().strftime("%Y-%m")
    out = run("reconcile", "--against", "invocation-logs", "--period", period, *extra,
              "--output", "json", expect=expect)  # fmt: skip
    return json.loads(out.stdout)


def _direct_call(box, customer_id: str, request_id: str) -> str:
    """A call straight to the fake Bedrock with the proxy's tag, as a proxy would have sent
    it before dying: Bedrock served (and logged) it, the proxy recorded nothing."""
    client = boto3.client(
        "bedrock-runtime", region_name=box.region, endpoint_url=box.bedrock_url,
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(proxies={}, signature_version="v4"),
    )  # fmt: skip
    answer = client.converse(
        modelId=HAIKU,
        messages=[{"role": "user", "content": [{"text": "lost"}]}],
        requestMetadata={
            CUSTOMER_KEY: customer_id,
            REQUEST_KEY: request_id,
            INSTALLATION_KEY: box.settings().tables.usage,
        },
    )
    return answer["ResponseMetadata"]["RequestId"]


def test_proxy_traffic_is_clean_a_lost_request_is_found_and_repair_books_it(box, monkeypatch):
    customer_id, token = _customer(box)
    _traffic(box, token, monkeypatch)
    clean = _reconcile(box, expect=0)
    assert clean["totals"]["differences"] == 0 and clean["rows"] == []
    assert clean["engine"] == "local" and clean["source"] == "s3"

    lost = _direct_call(box, customer_id, "proxy-request-lost-1")
    served = box.fake.usage_by_request_id[lost]
    found = _reconcile(box, expect=5)
    assert found["totals"] == {**found["totals"], "differences": 1, "unrecorded": 1}
    (request,) = found["requests"]
    assert request["customer_id"] == customer_id and request["kind"] == "unrecorded"
    assert request["bedrock_request_id"] == lost
    assert request["request_id"] == "proxy-request-lost-1"
    assert request["admitted"] is False  # a call made outside the proxy
    assert request["aws_input_tokens"] == served["input_tokens"]
    assert request["aws_output_tokens"] == served["output_tokens"]
    (row,) = found["rows"]
    assert (row["customer_id"], row["model"], row["requests"]) == (customer_id, HAIKU, 1)
    assert row["token_difference"] == served["input_tokens"] + served["output_tokens"]

    before = usage_report(counter_store(box.settings()), [customer_id], *[box.clock().date()] * 2)
    repaired = _reconcile(box, "--repair", "--yes", expect=0)
    assert repaired["repair"]["booked"] == 1 and repaired["repair"]["log_lines_written"] == 1
    after = usage_report(counter_store(box.settings()), [customer_id], *[box.clock().date()] * 2)
    assert after.totals["requests"] == before.totals["requests"] + 1
    assert after.totals["output_tokens"] == (
        before.totals["output_tokens"] + served["output_tokens"]
    )
    (line,) = [x for x in log_lines(box, customer_id) if x["repaired"]]
    assert line["bedrock_request_id"] == lost and line["event_type"] == "bedrock_invoke"
    assert "reconcile --against invocation-logs --repair" in line["note"]

    assert _reconcile(box, expect=0)["totals"]["differences"] == 0
    # The counters and the usage log agree too: the booking went to both.
    period = box.clock().strftime("%Y-%m")
    run("reconcile", "--period", period, "--output", "json", expect=0)
    # A second repair finds nothing to book.
    again = _reconcile(box, "--repair", "--yes", expect=0)
    assert again["repair"] == {**again["repair"], "applied": False, "booked": 0}


class _Killed(BaseException):
    """The Lambda dying mid-request: no except clause of the handler catches it."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_proxy_killed_after_bedrock_answered_is_reported_with_its_customer(box):
    customer_id, token = _customer(box)
    proxy = box.proxy_server.proxy
    real = proxy._bedrock

    class DiesAfterTheCall:
        meta = real.meta

        def invoke_model(self, **kwargs):
            real.invoke_model(**kwargs)
            raise _Killed()

    proxy._bedrock = DiesAfterTheCall()
    try:
        request = urllib.request.Request(
            box.proxy_url,
            data=json.dumps({"modelId": HAIKU, **CLAUDE}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        # The connection dies with the "process": no answer, or a broken one.
        with pytest.raises((OSError, http.client.HTTPException)):
            urllib.request.urlopen(request, timeout=10)
    finally:
        proxy._bedrock = real
    # The proxy recorded its admission only: the usage-log reconcile calls it abandoned.
    (admitted,) = log_lines(box, customer_id)
    assert admitted["event_type"] == "proxy_admitted"
    period = box.clock().strftime("%Y-%m")
    run("reconcile", "--period", period, "--output", "json", expect=5)
    found = _reconcile(box, expect=5)
    (request_row,) = found["requests"]
    assert request_row["customer_id"] == customer_id and request_row["kind"] == "unrecorded"
    assert request_row["request_id"] == admitted["request_id"]
    assert request_row["admitted"] is True  # the proxy took it, then died
    _reconcile(box, "--repair", "--yes", expect=0)
    assert _reconcile(box, expect=0)["totals"]["differences"] == 0
    # The booked line is the admission's outcome: nothing is abandoned any more.
    run("reconcile", "--period", period, "--output", "json", expect=0)


def test_a_line_the_aws_log_lacks_and_a_token_difference_are_reported(box, monkeypatch):
    customer_id, token = _customer(box)
    _traffic(box, token, monkeypatch)
    s3 = box.settings().session().client("s3", endpoint_url=box.aws_endpoint_url)
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=box.log_bucket, Prefix="bedrock-invocation-logs/")[
            "Contents"
        ]
    ]
    records = [
        (k, json.loads(gzip.decompress(s3.get_object(Bucket=box.log_bucket, Key=k)["Body"].read())))
        for k in keys
    ]
    # One record gone (Bedrock "lost" it), one with other output tokens.
    (gone_key, gone), (bent_key, bent) = records[0], records[1]
    s3.delete_object(Bucket=box.log_bucket, Key=gone_key)
    bent["output"]["outputTokenCount"] += 5
    s3.put_object(Bucket=box.log_bucket, Key=bent_key,
                  Body=gzip.compress(json.dumps(bent).encode() + b"\n"))  # fmt: skip
    found = _reconcile(box, expect=5)
    kinds = {r["bedrock_request_id"]: r["kind"] for r in found["requests"]}
    assert kinds == {gone["requestId"]: "not_in_aws_log", bent["requestId"]: "tokens"}
    tokens = next(r for r in found["rows"] if r["kind"] == "tokens")
    assert tokens["token_difference"] == 5 and tokens["customer_id"] == customer_id
    # --repair books only what Bedrock served and the proxy missed: these stay, exit 5.
    result = _reconcile(box, "--repair", "--yes", expect=5)
    assert result["repair"]["applied"] is False


def test_cloudwatch_logs_as_the_source_give_the_same_answer(box, monkeypatch):
    from bedrock_billing.fakebedrock.invocationlog import (
        CloudWatchInvocationLog,
        InvocationLogger,
    )

    logs = box.settings().session().client("logs", endpoint_url=box.aws_endpoint_url)
    box.fake.invocation_log = InvocationLogger(
        CloudWatchInvocationLog(logs, "/bedrock/invocations"),
        account_id=box.account_id, region=box.region, clock=box.clock,
    )  # fmt: skip
    customer_id, token = _customer(box)
    _traffic(box, token, monkeypatch)
    clean = _reconcile(box, "--log-source", "cloudwatch", "--log-group", "/bedrock/invocations",
                       expect=0)  # fmt: skip
    assert clean["source"] == "cloudwatch" and clean["totals"]["differences"] == 0
    lost = _direct_call(box, customer_id, "lost-2")
    found = _reconcile(box, "--log-source", "cloudwatch", "--log-group", "/bedrock/invocations",
                       expect=5)  # fmt: skip
    assert [r["bedrock_request_id"] for r in found["requests"]] == [lost]
