"""The sandbox's stand-in for the usage table's DynamoDB Stream.

moto 5.2 answers DescribeStream with "Not yet implemented", so the sandbox and the tests feed
the notifier themselves: :class:`MeterStream` reads the ``METER#`` items of the usage table
(a Scan; the sandbox's tables are small), compares each with the image it saw last and
hands the notifier the same stream records Lambda would (``eventName``, ``Keys``,
``OldImage``, ``NewImage``), filtered by the deployed filter (``core.alerts.STREAM_FILTER``).
Several MeterStreams over one table behave as racing notifiers: each sees the crossing, the
conditional write lets one fire it.
"""

from __future__ import annotations

from ..core.alerts import stream_filter_matches
from ..core.schema import METER_PREFIX


class MeterStream:
    def __init__(self, dynamodb, usage_table: str):
        self.dynamodb, self.table = dynamodb, usage_table
        self._seen: dict[tuple[str, str], dict] = {}

    def poll(self) -> list[dict]:
        """The records for every METER# item created or changed since the last poll."""
        records = []
        kwargs = {
            "TableName": self.table,
            "FilterExpression": "begins_with(sk, :p)",
            "ExpressionAttributeValues": {":p": {"S": METER_PREFIX}},
            "ConsistentRead": True,
        }
        while True:
            page = self.dynamodb.scan(**kwargs)
            for item in page.get("Items", []):
                key = (item["customer_id"]["S"], item["sk"]["S"])
                old = self._seen.get(key)
                if old == item:
                    continue
                self._seen[key] = item
                record = {
                    "eventSource": "aws:dynamodb",
                    "eventName": "MODIFY" if old is not None else "INSERT",
                    "dynamodb": {
                        "Keys": {"customer_id": item["customer_id"], "sk": item["sk"]},
                        "NewImage": item,
                        "StreamViewType": "NEW_AND_OLD_IMAGES",
                    },
                }
                if old is not None:
                    record["dynamodb"]["OldImage"] = old
                if stream_filter_matches(record):
                    records.append(record)
            if "LastEvaluatedKey" not in page:
                return records
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def pump(self, notifier) -> list[dict]:
        """Poll once and run the notifier on what changed; the events it fired."""
        return notifier.handle_records(self.poll())
