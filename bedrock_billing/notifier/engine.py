"""The notifier's engine: stream records in, alert events out (SNS topic and webhook).

For each change of a customer's ``METER#`` item it reads the customer's limits and alert
settings, finds the thresholds crossed (``core.alerts.crossings``) and fires each one once:
a conditional ``PutItem`` of its ``ALERT#`` marker decides, so a retried batch, a replayed
record or two notifiers racing never send it twice. A fired event is kept as an ``EVENT#``
item with its delivery state, published to the operator's topic and POSTed, signed, to the
customer's webhook with retries; a delivery that gives up stays ``failed`` for
``webhooks redeliver``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from ..core import alerts, anomalies
from ..core.customers import InvalidRecord, read_customer_record
from ..core.items import from_item, to_item
from ..core.schema import day_range, parse_day_key
from ..core.timeutil import Clock, epoch_seconds, iso_z, system_clock
from ..core.usage import COUNTERS, UsageRow
from ..core.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from . import delivery


def _key(customer_id: str, sk: str) -> dict:
    return {"customer_id": {"S": customer_id}, "sk": {"S": sk}}


class Notifier:
    def __init__(
        self,
        dynamodb,
        usage_table: str,
        customers_table: str,
        *,
        sns=None,
        topic_arn: str | None = None,
        kms=None,
        default_thresholds: Iterable[int] = alerts.DEFAULT_THRESHOLDS,
        clock: Clock = system_clock,
        post: delivery.Post = delivery.http_post,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = delivery.MAX_ATTEMPTS,
        timeout: float = delivery.TIMEOUT,
        backoff_base: float = 1.0,
    ):
        self.dynamodb, self.usage_table, self.customers_table = (
            dynamodb,
            usage_table,
            (customers_table),
        )
        self.sns, self.topic_arn, self.kms = sns, topic_arn, kms
        self.default_thresholds = tuple(default_thresholds)
        self.clock, self.post, self.sleep = clock, post, sleep
        self.max_attempts, self.timeout, self.backoff_base = max_attempts, timeout, backoff_base

    # ---- stream records

    def handle_records(self, records: Iterable[Mapping[str, Any]]) -> list[dict]:
        """Every event fired for a batch of DynamoDB stream records (Lambda's shape)."""
        fired: list[dict] = []
        for record in records:
            if record.get("eventName") not in ("INSERT", "MODIFY"):
                continue
            change = record.get("dynamodb") or {}
            keys = from_item(change.get("Keys") or {})
            sk = keys.get("sk")
            if not isinstance(sk, str) or not sk.startswith("METER#"):
                continue
            old = from_item(change.get("OldImage") or {})
            new = from_item(change.get("NewImage") or {})
            fired += self.process_meter(str(keys.get("customer_id")), sk, old, new)
        return fired

    def process_meter(self, customer_id: str, sk: str, old: Mapping, new: Mapping) -> list[dict]:
        limits = self._limits(customer_id)
        if not limits:
            return []
        settings = self.settings(customer_id)
        thresholds = settings.get("thresholds") or self.default_thresholds
        found = alerts.crossings(sk, old, new, limits, [int(t) for t in thresholds])
        events = []
        for crossing in found:
            event = self.fire(customer_id, crossing, settings)
            if event is not None:
                events.append(event)
        return events

    def _limits(self, customer_id: str) -> dict[str, Any]:
        answer = self.dynamodb.get_item(
            TableName=self.customers_table,
            Key={"customer_id": {"S": customer_id}},
            ConsistentRead=True,
        )
        if "Item" not in answer:
            return {}
        try:
            record = read_customer_record(from_item(answer["Item"]))
        except InvalidRecord:
            return {}  # the proxy refuses such a customer; nothing to alert on
        return {
            alerts.DAILY_REQUESTS: record.daily_request_limit,
            alerts.MONTHLY_TOKENS: record.monthly_token_limit,
            alerts.MONTHLY_BUDGET: record.monthly_budget,
        }

    def settings(self, customer_id: str) -> dict[str, Any]:
        answer = self.dynamodb.get_item(
            TableName=self.usage_table, Key=_key(customer_id, alerts.SETTINGS_KEY)
        )
        return from_item(answer.get("Item") or {})

    # ---- firing

    def fire(self, customer_id: str, crossing: alerts.Crossing, settings: Mapping) -> dict | None:
        """The event for ``crossing`` if this call is the one that fires it, else None."""
        event = alerts.crossing_event(customer_id, crossing, self.clock())
        return self.fire_once(customer_id, crossing.marker_key, event, settings)

    def fire_once(self, customer_id: str, marker_key: str, event: dict, settings: Mapping):
        """Dispatch ``event`` unless ``marker_key`` was fired before (conditional write)."""
        now = self.clock()
        marker = {
            "customer_id": customer_id,
            "sk": marker_key,
            "event_id": event["id"],
            "fired_at": iso_z(now),
            "ttl": epoch_seconds(now + timedelta(days=alerts.ALERT_LIFETIME_DAYS)),
        }
        try:
            self.dynamodb.put_item(
                TableName=self.usage_table,
                Item=to_item(marker),
                ConditionExpression="attribute_not_exists(sk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None  # fired before: by a replay, a retry or a racing notifier
            raise
        try:
            self.dispatch(event, settings)
        except Exception:
            # The topic refused: forget the marker so the stream's retry fires it again.
            self.dynamodb.delete_item(TableName=self.usage_table, Key=_key(customer_id, marker_key))
            raise
        return event

    # ---- the daily run

    def daily_anomalies(self, day, window: int = anomalies.WINDOW_DAYS) -> list[dict]:
        """``anomaly.detected`` for ``day``'s findings (core/anomalies.py), once each."""
        history = {}
        pages = {"TableName": self.customers_table, "ProjectionExpression": "customer_id"}
        while True:
            page = self.dynamodb.scan(**pages)
            for item in page.get("Items", []):
                cid = item["customer_id"]["S"]
                history[cid] = self._day_rows(cid, day - timedelta(days=window), day)
            if "LastEvaluatedKey" not in page:
                break
            pages["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        sent = []
        for found in anomalies.detect(history, day, window):
            data = found.as_dict()
            event = alerts.make_event(
                alerts.ANOMALY_DETECTED, found.customer_id, data, self.clock()
            )
            marker = f"{alerts.ALERT_PREFIX}{day.isoformat()}#anomaly#{found.kind}#{found.metric}"
            fired = self.fire_once(
                found.customer_id, marker, event, self.settings(found.customer_id)
            )
            if fired is not None:
                sent.append(fired)
        return sent

    def _day_rows(self, customer_id: str, first, last) -> list[UsageRow]:
        low, high = day_range(first, last)
        kwargs = {
            "TableName": self.usage_table,
            "KeyConditionExpression": "customer_id = :c AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":c": {"S": customer_id},
                ":lo": {"S": low},
                ":hi": {"S": high},
            },
        }
        rows = []
        while True:
            page = self.dynamodb.query(**kwargs)
            for item in page.get("Items", []):
                values = from_item(item)
                d, model = parse_day_key(values["sk"])
                rows.append(UsageRow(d, model, **{n: int(values.get(n) or 0) for n in COUNTERS}))
            if "LastEvaluatedKey" not in page:
                return rows
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def expiring_tokens(self, tokens_table: str, within_days: int = 7) -> list[dict]:
        """``token.expiring`` once per token that expires within ``within_days``."""
        now = self.clock()
        kwargs: dict[str, Any] = {
            "TableName": tokens_table,
            "FilterExpression": "#s = :active AND expires_at BETWEEN :now AND :until",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": {
                ":active": {"S": "active"},
                ":now": {"S": iso_z(now)},
                ":until": {"S": iso_z(now + timedelta(days=within_days))},
            },
        }
        sent = []
        while True:
            page = self.dynamodb.scan(**kwargs)
            for item in page.get("Items", []):
                token = from_item(item)
                customer_id = str(token.get("customer_id"))
                event = alerts.make_event(
                    alerts.TOKEN_EXPIRING,
                    customer_id,
                    {"token_prefix": token.get("prefix"), "expires_at": token.get("expires_at")},
                    now,
                )
                marker = f"{alerts.ALERT_PREFIX}token-expiring#{str(token['token_hash'])[:24]}"
                fired = self.fire_once(customer_id, marker, event, self.settings(customer_id))
                if fired is not None:
                    sent.append(fired)
            if "LastEvaluatedKey" not in page:
                return sent
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def send(self, event_type: str, customer_id: str, data: Mapping[str, Any]) -> dict:
        """An event that is not a threshold (token.expiring, anomaly.detected, ...)."""
        event = alerts.make_event(event_type, customer_id, data, self.clock())
        self.dispatch(event, self.settings(customer_id))
        return event

    def dispatch(self, event: dict, settings: Mapping) -> dict:
        """Keep the event, publish it to the operator's topic, deliver it to the webhook."""
        url = settings.get("webhook_url")
        now = self.clock()
        record = {
            "customer_id": event["customer_id"],
            "sk": alerts.EVENT_PREFIX + event["id"],
            "event_id": event["id"],
            "event_type": event["type"],
            "body": alerts.event_body(event).decode(),
            "created_at": iso_z(now),
            "status": alerts.PENDING if url else alerts.NO_WEBHOOK,
            "attempts": 0,
            "ttl": epoch_seconds(now + timedelta(days=alerts.EVENT_LIFETIME_DAYS)),
        }
        if url:
            record["webhook_url"] = url
        self.dynamodb.put_item(TableName=self.usage_table, Item=to_item(record))
        if self.sns is not None and self.topic_arn:
            self.sns.publish(
                TopicArn=self.topic_arn,
                Subject=f"bedrock-billing: {event['type']} for {event['customer_id']}"[:99],
                Message=record["body"],
                MessageAttributes={
                    "event_type": {"DataType": "String", "StringValue": event["type"]},
                    "customer_id": {"DataType": "String", "StringValue": event["customer_id"]},
                },
            )
        if url:
            return self._deliver(record, settings)
        return record

    # ---- webhook delivery

    def _secret(self, customer_id: str, settings: Mapping) -> str:
        blob = settings.get("secret_ciphertext")
        if blob is None or self.kms is None:
            raise RuntimeError("no signing secret")
        answer = self.kms.decrypt(
            CiphertextBlob=bytes(blob), EncryptionContext={"customer_id": customer_id}
        )
        return answer["Plaintext"].decode()

    def _deliver(self, record: dict, settings: Mapping) -> dict:
        customer_id, body = record["customer_id"], record["body"].encode()
        try:
            secret = self._secret(customer_id, settings)
        except (ClientError, RuntimeError) as exc:
            return self._record_outcome(
                record, delivery.Outcome(False, 0, None, f"signing secret: {exc}"[:200])
            )

        def headers() -> dict[str, str]:
            t = epoch_seconds(self.clock())
            return {
                "Content-Type": "application/json",
                "User-Agent": "bedrock-billing-webhooks/1",
                EVENT_ID_HEADER: record["event_id"],
                SIGNATURE_HEADER: sign(secret, t, body),
            }

        outcome = delivery.deliver(
            record["webhook_url"],
            body,
            headers,
            allow_private=bool(settings.get("allow_private_url")),
            post=self.post,
            sleep=self.sleep,
            max_attempts=self.max_attempts,
            timeout=self.timeout,
            backoff_base=self.backoff_base,
        )
        return self._record_outcome(record, outcome)

    def _record_outcome(self, record: dict, outcome: delivery.Outcome) -> dict:
        record = {
            **record,
            "status": alerts.DELIVERED if outcome.delivered else alerts.FAILED,
            "attempts": int(record.get("attempts") or 0) + outcome.attempts,
            "last_attempt_at": iso_z(self.clock()),
        }
        record.pop("last_status", None)
        record.pop("last_error", None)
        if outcome.last_status is not None:
            record["last_status"] = outcome.last_status
        if outcome.last_error:
            record["last_error"] = outcome.last_error
        self.dynamodb.put_item(TableName=self.usage_table, Item=to_item(record))
        return record

    def redeliver(self, customer_id: str, event_id: str) -> dict | None:
        """Deliver a kept event again to the customer's current webhook; None if unknown."""
        answer = self.dynamodb.get_item(
            TableName=self.usage_table,
            Key=_key(customer_id, alerts.EVENT_PREFIX + event_id),
            ConsistentRead=True,
        )
        if "Item" not in answer:
            return None
        record = from_item(answer["Item"])
        settings = self.settings(customer_id)
        if not settings.get("webhook_url"):
            return {**record, "status": alerts.NO_WEBHOOK}
        record["webhook_url"] = settings["webhook_url"]
        return self._deliver(record, settings)
