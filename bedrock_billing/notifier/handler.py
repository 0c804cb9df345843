"""The notifier Lambda: a DynamoDB Streams batch from the usage table in, alerts out.

Environment: ``USAGE_TABLE``, ``CUSTOMERS_TABLE``, ``ALERTS_TOPIC_ARN`` and
``ALERT_THRESHOLDS`` (comma-separated percentages, the installation's default). A record
that fails raises, so Lambda retries the batch (markers make the retry safe) and, after
its retries, sends the batch's description to the dead-letter queue.
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta

import boto3

from ..core.alerts import DEFAULT_THRESHOLDS, parse_thresholds
from .engine import Notifier

_notifier: Notifier | None = None
_lock = threading.Lock()


def from_env(env=None) -> Notifier:
    env = os.environ if env is None else env
    region = env.get("AWS_REGION")
    thresholds = env.get("ALERT_THRESHOLDS")
    return Notifier(
        boto3.client("dynamodb", region_name=region),
        env["USAGE_TABLE"],
        env["CUSTOMERS_TABLE"],
        sns=boto3.client("sns", region_name=region),
        topic_arn=env.get("ALERTS_TOPIC_ARN"),
        kms=boto3.client("kms", region_name=region),
        default_thresholds=parse_thresholds(thresholds.split(","))
        if thresholds
        else DEFAULT_THRESHOLDS,
    )


def get_notifier() -> Notifier:
    global _notifier
    if _notifier is None:
        with _lock:
            if _notifier is None:
                _notifier = from_env()
    return _notifier


def lambda_handler(event, context):
    if event.get("source") == "aws.events":  # the daily schedule
        notifier = get_notifier()
        sent = notifier.expiring_tokens(os.environ["TOKENS_TABLE"])
        yesterday = notifier.clock().date() - timedelta(days=1)  # the last complete UTC day
        found = notifier.daily_anomalies(yesterday)
        return {"token_expiring": len(sent), "anomaly_detected": len(found)}
    fired = get_notifier().handle_records(event.get("Records") or [])
    return {"fired": len(fired)}
