"""Alert settings and kept events in the usage table (``core.alerts`` names the items).

The customer's partition holds ``NOTIFY#SETTINGS`` (thresholds, webhook url, the signing
secret encrypted by KMS), ``ALERT#`` markers and ``EVENT#`` records; the stream filter
keeps all of them away from the notifier, and usage reads (``DAY#`` ranges) never see them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..core import alerts
from ..core.items import from_item, serialize
from .dynamo import query_all, scan_all


def _key(customer_id: str, sk: str) -> dict:
    return {"customer_id": {"S": customer_id}, "sk": {"S": sk}}


class NotificationStore:
    def __init__(self, client, usage_table: str):
        self.client, self.table = client, usage_table

    def settings(self, customer_id: str) -> dict[str, Any]:
        got = self.client.get_item(
            TableName=self.table, Key=_key(customer_id, alerts.SETTINGS_KEY), ConsistentRead=True
        )
        return from_item(got.get("Item") or {})

    def all_settings(self) -> Iterator[dict[str, Any]]:
        return scan_all(
            self.client,
            self.table,
            FilterExpression="sk = :s",
            ExpressionAttributeValues={":s": {"S": alerts.SETTINGS_KEY}},
        )

    def update_settings(self, customer_id: str, set_values: dict, remove: tuple = ()) -> None:
        names, values, sets = {}, {}, []
        for i, (name, value) in enumerate(set_values.items()):
            names[f"#s{i}"], values[f":s{i}"] = name, serialize(value)
            sets.append(f"#s{i} = :s{i}")
        expression = "SET " + ", ".join(sets) if sets else ""
        if remove:
            for i, name in enumerate(remove):
                names[f"#r{i}"] = name
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
        kwargs = {
            "TableName": self.table,
            "Key": _key(customer_id, alerts.SETTINGS_KEY),
            "UpdateExpression": expression.strip(),
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        self.client.update_item(**kwargs)

    def fired(self, customer_id: str) -> list[dict[str, Any]]:
        return list(
            query_all(
                self.client,
                self.table,
                KeyConditionExpression="customer_id = :c AND begins_with(sk, :p)",
                ExpressionAttributeValues={
                    ":c": {"S": customer_id},
                    ":p": {"S": alerts.ALERT_PREFIX},
                },
            )
        )

    def events(self, customer_id: str | None = None, status: str | None = None) -> list[dict]:
        values: dict[str, Any] = {":p": {"S": alerts.EVENT_PREFIX}}
        filters = []
        if status:
            values[":st"] = {"S": status}
            filters.append("#st = :st")
        extra: dict[str, Any] = {}
        if filters:
            extra = {"FilterExpression": " AND ".join(filters)}
            extra["ExpressionAttributeNames"] = {"#st": "status"}
        if customer_id:
            values[":c"] = {"S": customer_id}
            items = query_all(
                self.client,
                self.table,
                KeyConditionExpression="customer_id = :c AND begins_with(sk, :p)",
                ExpressionAttributeValues=values,
                **extra,
            )
        else:
            cond = "begins_with(sk, :p)" + (" AND " + extra["FilterExpression"] if extra else "")
            kwargs: dict[str, Any] = {"FilterExpression": cond, "ExpressionAttributeValues": values}
            if extra:
                kwargs["ExpressionAttributeNames"] = extra["ExpressionAttributeNames"]
            items = scan_all(self.client, self.table, **kwargs)
        return sorted(items, key=lambda e: e.get("created_at", ""))

    def find_event(self, event_id: str) -> dict[str, Any] | None:
        for item in scan_all(
            self.client,
            self.table,
            FilterExpression="sk = :s",
            ExpressionAttributeValues={":s": {"S": alerts.EVENT_PREFIX + event_id}},
        ):
            return item
        return None
