"""End to end: the local server, moto's DynamoDB server and the fake Bedrock, on loopback.

The spec's client examples (cURL and Python ``requests``) get the model's answer; the
counters and the log line carry exactly the token counts the fake Bedrock reported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import boto3
import pytest
import requests

from bedrock_billing.core.logschema import FIELD_NAMES
from bedrock_billing.core.schema import TableNames
from bedrock_billing.fakebedrock import FakeBedrock
from bedrock_billing.sandbox.proxy_server import ProxyServer
from tests.proxy_support import (
    FAKE_CREDS,
    SONNET,
    create_tables,
    proxy_before_fake,
    put_customer,
    put_token,
    usage_items,
)

CREDS = FAKE_CREDS


@pytest.fixture(scope="module")
def fake_bedrock():
    with FakeBedrock(seed=11) as fake:
        yield fake


@pytest.fixture
def stack(moto_server, fake_bedrock, aws_credentials):
    fake_bedrock.reset()
    ddb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1", **CREDS)
    tables = TableNames.for_stage("e2e" + uuid.uuid4().hex[:8])
    create_tables(ddb, tables)
    # the outcome lines only (one per request)
    proxy, logs = proxy_before_fake(ddb, tables, fake_bedrock.url, admission_sink=[].append)
    cid = put_customer(ddb, tables, daily_request_limit=50)
    token = put_token(ddb, tables, cid)
    with ProxyServer(proxy) as server:
        yield server, ddb, tables, cid, token, logs, fake_bedrock


def today_key(model):
    from datetime import UTC, datetime

    return f"DAY#{datetime.now(UTC).date().isoformat()}#{model}"


def assert_counted_exactly(stack, answered: int = 1):
    server, ddb, tables, cid, token, logs, fake = stack
    assert len(logs) == answered
    totals = {"input_tokens": 0, "output_tokens": 0}
    for line in logs:
        assert tuple(line) == FIELD_NAMES and line["event_type"] == "bedrock_invoke"
        reported = fake.usage_by_request_id[line["bedrock_request_id"]]
        for key in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_write_input_tokens",
        ):
            assert line[key] == reported[key], key
        assert line["usage_estimated"] is False and line["streamed"] == reported["streamed"]
        totals["input_tokens"] += reported["input_tokens"]
        totals["output_tokens"] += reported["output_tokens"]
    day = usage_items(ddb, tables, cid)[today_key(logs[0]["foundation_model"])]
    assert day["requests"] == answered
    assert day["input_tokens"] == totals["input_tokens"]
    assert day["output_tokens"] == totals["output_tokens"]


SPEC_CURL_BODY = """{
    "modelId": "anthropic.claude-3-sonnet-20240229-v1:0",
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 1000,
    "messages": [
      {
        "role": "user",
        "content": [
          {
            "type": "text",
            "text": "What is the capital of France?"
          }
        ]
      }
    ]
  }"""


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
def test_spec_curl_example_gets_the_answer_and_exact_counts(stack):
    server, *_, token, logs, fake = stack
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            server.endpoint,
            "-H",
            "Content-Type: application/json",
            "-H",
            f"Authorization: Bearer {token}",
            "-d",
            SPEC_CURL_BODY,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    answer = json.loads(out.stdout)
    assert answer["type"] == "message" and answer["content"][0]["text"]
    assert fake.calls[0]["model_id"] == SONNET
    assert_counted_exactly(stack)


def test_spec_python_requests_example(stack):
    server, *_, token, logs, fake = stack

    def call_bedrock_api(prompt):  # the spec's example, with the endpoint filled in
        api_endpoint = server.endpoint
        auth_token = token
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {auth_token}"}
        payload = {
            "modelId": "anthropic.claude-3-sonnet-20240229-v1:0",
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 1000,
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
        }
        response = requests.post(api_endpoint, headers=headers, json=payload, timeout=30)
        response.raise_for_status()
        return response.json()

    for prompt in ("What is the capital of France?", "And of Italy?"):
        assert call_bedrock_api(prompt)["content"][0]["type"] == "text"
    assert_counted_exactly(stack, answered=2)


def test_stream_is_served_as_sse_and_counted_exactly(stack):
    server, *_, token, logs, fake = stack
    payload = {
        "modelId": "us." + SONNET,
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 200,
        "stream": True,
        "messages": [{"role": "user", "content": "Tell me a story"}],
    }
    with requests.post(
        server.endpoint,
        json=payload,
        stream=True,
        timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: ") :]) for line in lines[:-1]]
    assert chunks[0]["type"] == "message_start"
    assert "amazon-bedrock-invocationMetrics" in chunks[-1]
    assert logs[0]["model_id"] == "us." + SONNET and logs[0]["foundation_model"] == SONNET
    assert_counted_exactly(stack)


def test_converse_through_the_server(stack):
    server, *_, token, logs, fake = stack
    payload = {
        "modelId": SONNET,
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "inferenceConfig": {"maxTokens": 50},
    }
    response = requests.post(
        server.url + "/prod/bedrock/converse",
        json=payload,
        timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert response.json()["usage"]["outputTokens"] == logs[0]["output_tokens"]
    assert_counted_exactly(stack)


def test_truncated_stream_is_counted_from_what_it_carried_and_flagged(stack):
    server, ddb, tables, cid, token, logs, fake = stack
    fake.fail_next("stream_truncated")
    payload = {
        "modelId": SONNET,
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "Tell me a story"}],
    }
    response = requests.post(
        server.endpoint, json=payload, timeout=30, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.text.rstrip().endswith("data: [DONE]")
    [line] = logs
    reported = fake.usage_by_request_id[line["bedrock_request_id"]]
    assert reported["metrics_reported"] is False
    assert line["usage_estimated"] is True and line["input_tokens"] == reported["input_tokens"]
    assert usage_items(ddb, tables, cid)[today_key(SONNET)]["estimated"] == 1


def test_bedrock_fault_through_the_server_is_mapped(stack):
    server, *_, token, logs, fake = stack
    fake.fail_next("throttling")
    response = requests.post(
        server.endpoint,
        json={
            "modelId": SONNET,
            "max_tokens": 5,
            "anthropic_version": "bedrock-2023-05-31",
            "messages": [],
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "bedrock_throttled"
    assert logs[0]["event_type"] == "bedrock_error"


def test_unknown_token_over_http_is_401_json(stack):
    server, *_ = stack
    response = requests.post(
        server.endpoint,
        json={"modelId": SONNET},
        timeout=30,
        headers={"Authorization": "Bearer nope"},
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_token"
