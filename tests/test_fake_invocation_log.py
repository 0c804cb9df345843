"""The fake Bedrock's model invocation log: one record per served call, in Bedrock's
schema, metadata only (no prompt, no answer), delivered to S3 or CloudWatch Logs as
Bedrock lays them out."""

from __future__ import annotations

import gzip
import json

import pytest
from botocore.exceptions import ClientError

from bedrock_billing.core.timeutil import FixedClock
from bedrock_billing.fakebedrock import FakeBedrock
from bedrock_billing.fakebedrock.invocationlog import (
    CLOUDWATCH_STREAM,
    CloudWatchInvocationLog,
    InvocationLogger,
    S3InvocationLog,
)
from tests.test_fake_bedrock import anthropic_body, make_client

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
CLOCK = FixedClock("2026-10-05T13:04:05Z")
SECRET = "the prompt is private"
BUCKET = "invocation-log-bucket"


@pytest.fixture
def logged():
    records: list[dict] = []
    with FakeBedrock(seed=3) as fake:
        fake.invocation_log = InvocationLogger(
            records.append, account_id="123456789012", region="us-east-1", clock=CLOCK
        )
        yield fake, make_client(fake.url), records


def test_each_served_call_gets_one_metadata_only_record(logged):
    fake, client, records = logged
    meta = json.dumps({"team": "blue"})
    answer = client.invoke_model(modelId=HAIKU, body=json.dumps(anthropic_body(SECRET)),
                                 requestMetadata=meta)  # fmt: skip
    client.converse(modelId=HAIKU, messages=[{"role": "user", "content": [{"text": SECRET}]}],
                    requestMetadata={"env": "ci"})  # fmt: skip
    stream = client.converse_stream(
        modelId=HAIKU, messages=[{"role": "user", "content": [{"text": SECRET}]}]
    )
    for _ in stream["stream"]:
        pass
    assert [r["operation"] for r in records] == ["InvokeModel", "Converse", "ConverseStream"]
    first = records[0]
    call = fake.usage_by_request_id[answer["ResponseMetadata"]["RequestId"]]
    assert first == {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": "2026-10-05T13:04:05Z",
        "accountId": "123456789012",
        "identity": {"arn": first["identity"]["arn"]},
        "region": "us-east-1",
        "requestId": call["request_id"],
        "operation": "InvokeModel",
        "modelId": HAIKU,
        "input": {
            "inputContentType": "application/json",
            "inputTokenCount": call["input_tokens"],
            "cacheReadInputTokenCount": 0,
            "cacheWriteInputTokenCount": 0,
        },
        "output": {"outputContentType": "application/json",
                   "outputTokenCount": call["output_tokens"]},  # fmt: skip
        "inferenceRegion": "us-east-1",
        "requestMetadata": {"team": "blue"},
    }
    assert records[1]["requestMetadata"] == {"env": "ci"}
    assert "requestMetadata" not in records[2]
    assert SECRET not in json.dumps(records)


def test_refused_calls_are_not_logged_and_bad_metadata_is_bedrocks_validation_error(logged):
    fake, client, records = logged
    fake.fail_next("throttling")
    with pytest.raises(ClientError):
        client.invoke_model(modelId=HAIKU, body=json.dumps(anthropic_body()))
    with pytest.raises(ClientError) as bad:
        client.invoke_model(modelId=HAIKU, body=json.dumps(anthropic_body()),
                            requestMetadata="[1, 2]")  # fmt: skip
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    assert records == []


def test_a_stream_broken_by_the_model_is_logged_with_its_error_code(logged):
    fake, client, records = logged
    fake.fail_next("stream_exception")
    with pytest.raises(ClientError):
        stream = client.converse_stream(
            modelId=HAIKU, messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
        for _ in stream["stream"]:
            pass
    (record,) = records
    assert record["errorCode"] == "modelStreamErrorException"


def test_s3_delivery_is_gzipped_json_lines_under_bedrocks_key_layout(moto_session):
    s3 = moto_session.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    log = InvocationLogger(S3InvocationLog(s3, BUCKET, "inv/", "123456789012", "us-east-1"),
                           account_id="123456789012", region="us-east-1", clock=CLOCK)  # fmt: skip
    call = {"request_id": "r1", "api": "Converse", "model_id": HAIKU, "input_tokens": 3,
            "output_tokens": 4, "cache_read_input_tokens": 0, "cache_write_input_tokens": 0}
    log(call, {"a": "b"})
    (obj,) = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert obj["Key"].startswith(
        "inv/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/10/05/13/"
    )
    assert obj["Key"].endswith(".json.gz")
    body = gzip.decompress(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
    assert json.loads(body.decode().splitlines()[0])["requestId"] == "r1"
    assert log.written == 1 and log.failures == 0


def test_cloudwatch_delivery_is_one_event_per_record(moto_session):
    logs = moto_session.client("logs")
    # CloudWatch Logs refuses events over 14 days old: the record's time is now.
    log = InvocationLogger(CloudWatchInvocationLog(logs, "/bedrock/inv"),
                           account_id="123456789012", region="us-east-1")  # fmt: skip
    call = {"request_id": "r2", "api": "InvokeModel", "model_id": HAIKU, "input_tokens": 1,
            "output_tokens": 2, "cache_read_input_tokens": 0, "cache_write_input_tokens": 0}
    log(call, None)
    log({**call, "request_id": "r3"}, None)
    events = logs.get_log_events(
        logGroupName="/bedrock/inv", logStreamName=CLOUDWATCH_STREAM, startFromHead=True
    )
    assert [json.loads(e["message"])["requestId"] for e in events["events"]] == ["r2", "r3"]


def test_a_failing_sink_never_fails_the_call(logged):
    fake, client, _ = logged

    def broken(_record):
        raise OSError("disk full")

    fake.invocation_log.sink = broken
    client.invoke_model(modelId=HAIKU, body=json.dumps(anthropic_body()))
    assert fake.invocation_log.failures == 1
