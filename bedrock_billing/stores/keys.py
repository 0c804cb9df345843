"""A customer's named keys in DynamoDB: the token items and the customer item's ``keys`` map.

A key's token item and its entry in the customer item change in one transaction, each
conditional on what was read, so a key is never half-created and two rotations at once
cannot both win. docs/schema.md, "Named keys", describes both shapes.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ..core.errors import Conflict
from ..core.items import to_item
from ..core.schema import KEY_COUNTERS, KEY_PREFIX, TableNames, parse_key_day_key
from .customers import _set_expression, token_update
from .dynamo import is_condition_failure, query_all


class KeyStore:
    def __init__(self, client, tables: TableNames):
        self.client = client
        self.tables = tables

    def _customer_key_update(
        self,
        customer_id: str,
        key_id: str,
        entry: dict[str, Any],
        *,
        new: bool,
        has_map: bool,
        expected_current: str | None = None,
    ) -> dict[str, Any]:
        names = {"#keys": "keys", "#k": key_id}
        values: dict[str, Any] = {}
        if new and not has_map:
            expr = "SET #keys = :map"
            cond = "attribute_exists(customer_id) AND attribute_not_exists(#keys)"
            values[":map"] = to_item({"m": {key_id: entry}})["m"]
            del names["#k"]
        else:
            expr = "SET #keys.#k = :entry"
            values[":entry"] = to_item({"e": entry})["e"]
            cond = "attribute_exists(customer_id) AND attribute_exists(#keys)"
            cond += (
                " AND attribute_not_exists(#keys.#k)" if new else " AND attribute_exists(#keys.#k)"
            )
        if expected_current is not None:
            names["#cur"] = "current_token_hash"
            cond += " AND #keys.#k.#cur = :expected"
            values[":expected"] = {"S": expected_current}
        return {
            "Update": {
                "TableName": self.tables.customers,
                "Key": {"customer_id": {"S": customer_id}},
                "UpdateExpression": expr,
                "ConditionExpression": cond,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }


    def _write(self, items: list[dict[str, Any]], conflict: str) -> None:
        try:
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            if is_condition_failure(exc):
                raise Conflict(conflict) from None
            raise

    def create(
        self,
        customer_id: str,
        key_id: str,
        token: dict[str, Any],
        entry: dict[str, Any],
        has_map: bool,
    ) -> None:
        put = {
            "Put": {
                "TableName": self.tables.tokens,
                "Item": to_item(token),
                "ConditionExpression": "attribute_not_exists(token_hash)",
            }
        }
        update = self._customer_key_update(customer_id, key_id, entry, new=True, has_map=has_map)
        self._write([put, update], "the customer's keys changed meanwhile: try again")

    def change(
        self,
        customer_id: str,
        key_id: str,
        entry: dict[str, Any],
        expected_current: str | None,
        token_changes: dict[str, dict[str, Any]],
        new_token: dict[str, Any] | None = None,
    ) -> None:
        """Rotate or revoke: update the key's entry (conditional on its current token being
        the one read), change its token items, and put a new token item if given."""
        items: list[dict[str, Any]] = []
        if new_token is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self.tables.tokens,
                        "Item": to_item(new_token),
                        "ConditionExpression": "attribute_not_exists(token_hash)",
                    }
                }
            )
        items += [token_update(self.tables, h, c) for h, c in token_changes.items()]
        items.append(
            self._customer_key_update(
                customer_id,
                key_id,
                entry,
                new=False,
                has_map=True,
                expected_current=expected_current,
            )
        )
        self._write(items, "the key changed meanwhile (another rotation?): try again")

    def set_key_attributes(self, token_hash: str, changes: dict[str, Any]) -> bool:
        """Migration: give a token item without a key its key attributes; False when it
        already has one (safe to run twice)."""
        expr, names, values = _set_expression(changes)
        try:
            self.client.update_item(
                TableName=self.tables.tokens,
                Key={"token_hash": {"S": token_hash}},
                UpdateExpression=expr,
                ConditionExpression="attribute_exists(token_hash) AND attribute_not_exists(key_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def key_days(self, customer_id: str, first: date, last: date) -> list[dict[str, Any]]:
        """Every KEY# counter item of one customer from ``first`` to ``last`` (one Query)."""
        rows = []
        for item in query_all(
            self.client,
            self.tables.usage,
            KeyConditionExpression="customer_id = :c AND begins_with(sk, :p)",
            ExpressionAttributeValues={":c": {"S": customer_id}, ":p": {"S": KEY_PREFIX}},
            ConsistentRead=True,
        ):
            plain = item
            key_id, day = parse_key_day_key(plain["sk"])
            if first <= day <= last:
                row = {"key_id": key_id, "day": day.isoformat()}
                row.update({n: int(plain.get(n, 0)) for n in KEY_COUNTERS})
                rows.append(row)
        return rows
