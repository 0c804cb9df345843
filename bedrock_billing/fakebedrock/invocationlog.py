"""Bedrock's model invocation log, as the fake Bedrock writes it for every call it serves.

One JSON record per invocation in Bedrock's documented shape (``schemaType``
``ModelInvocationLog``, ``schemaVersion`` ``1.0``; docs/reconcile.md cites the pages), in
metadata-only mode: no ``inputBodyJson`` / ``outputBodyJson`` (the deploy turns the text,
image, embedding, video and audio data delivery off), so no prompt and no answer is ever
written. Delivered as Bedrock delivers it:

- to S3, gzipped JSON lines under
  ``<prefix>AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/``;
- to CloudWatch Logs, one event per record in the stream ``aws/bedrock/modelinvocations``.

Standard library only; the writers take an S3 or CloudWatch Logs client (boto3's, or any
object with ``put_object`` / ``put_log_events``).
"""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from bedrock_billing.core.invocationlog import s3_prefix

SCHEMA_TYPE = "ModelInvocationLog"
SCHEMA_VERSION = "1.0"
CLOUDWATCH_STREAM = "aws/bedrock/modelinvocations"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def record(
    call: dict,
    *,
    timestamp: datetime,
    account_id: str,
    region: str,
    identity_arn: str,
    request_metadata: dict | None,
) -> dict:
    """One invocation-log record for a call the fake served (its ``calls`` entry)."""
    moment = _utc(timestamp)
    out: dict = {
        "schemaType": SCHEMA_TYPE,
        "schemaVersion": SCHEMA_VERSION,
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accountId": account_id,
        "identity": {"arn": identity_arn},
        "region": region,
        "requestId": call["request_id"],
        "operation": call["api"],
        "modelId": call["model_id"],
        "input": {
            "inputContentType": "application/json",
            "inputTokenCount": call["input_tokens"],
            "cacheReadInputTokenCount": call["cache_read_input_tokens"],
            "cacheWriteInputTokenCount": call["cache_write_input_tokens"],
        },
        "output": {
            "outputContentType": "application/json",
            "outputTokenCount": call["output_tokens"],
        },
        "inferenceRegion": region,
    }
    if call.get("error"):
        out["errorCode"] = call["error"]
    if request_metadata:
        out["requestMetadata"] = dict(request_metadata)
    return out


def s3_key(prefix: str, account_id: str, region: str, moment: datetime) -> str:
    moment = _utc(moment)
    return (
        s3_prefix(prefix, account_id, region)
        + moment.strftime("%Y/%m/%d/%H/")
        + moment.strftime("%Y%m%dT%H%M%SZ")
        + f"_{uuid.uuid4().hex}.json.gz"
    )


class S3InvocationLog:
    """Writes each record as its own gzipped JSON-lines object (Bedrock batches; one per
    record keeps a test's record visible the moment the call returns)."""

    def __init__(self, s3_client, bucket: str, prefix: str, account_id: str, region: str):
        self._s3 = s3_client
        self.bucket, self.prefix = bucket, prefix
        self.account_id, self.region = account_id, region

    def __call__(self, entry: dict) -> None:
        moment = datetime.strptime(entry["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
        body = gzip.compress((json.dumps(entry, separators=(",", ":")) + "\n").encode())
        self._s3.put_object(
            Bucket=self.bucket,
            Key=s3_key(self.prefix, self.account_id, self.region, moment),
            Body=body,
            ContentType="application/json",
            ContentEncoding="gzip",
        )


class CloudWatchInvocationLog:
    """Writes each record as one event of ``aws/bedrock/modelinvocations`` in ``group``."""

    def __init__(self, logs_client, group: str):
        self._logs = logs_client
        self.group = group
        self._ready = False
        self._lock = threading.Lock()

    def __call__(self, entry: dict) -> None:
        with self._lock:
            if not self._ready:
                for create in (
                    lambda: self._logs.create_log_group(logGroupName=self.group),
                    lambda: self._logs.create_log_stream(
                        logGroupName=self.group, logStreamName=CLOUDWATCH_STREAM
                    ),
                ):
                    try:
                        create()
                    except Exception as exc:  # ResourceAlreadyExistsException
                        if "AlreadyExists" not in type(exc).__name__ + str(exc):
                            raise
                self._ready = True
            moment = _utc(datetime.strptime(entry["timestamp"], "%Y-%m-%dT%H:%M:%SZ"))
            self._logs.put_log_events(
                logGroupName=self.group,
                logStreamName=CLOUDWATCH_STREAM,
                logEvents=[
                    {
                        "timestamp": int(moment.timestamp() * 1000),
                        "message": json.dumps(entry, separators=(",", ":")),
                    }
                ],
            )


class InvocationLogger:
    """What the fake calls for each served call: builds the record, hands it to ``sink``.

    A sink that fails is counted in ``failures``, never turned into an error for the
    caller: Bedrock's delivery is asynchronous to the answer.
    """

    def __init__(
        self,
        sink: Callable[[dict], None],
        *,
        account_id: str,
        region: str,
        identity_arn: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        self.sink = sink
        self.account_id, self.region = account_id, region
        self.identity_arn = identity_arn or (
            f"arn:aws:sts::{account_id}:assumed-role/bedrock-billing-proxy/fake-bedrock"
        )
        self.clock = clock or (lambda: datetime.now(UTC))
        self.failures = 0
        self.written = 0

    def __call__(self, call: dict, request_metadata: dict | None) -> None:
        entry = record(
            call,
            timestamp=self.clock(),
            account_id=self.account_id,
            region=self.region,
            identity_arn=self.identity_arn,
            request_metadata=request_metadata,
        )
        try:
            self.sink(entry)
            self.written += 1
        except Exception:
            self.failures += 1
