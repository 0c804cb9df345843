"""Customers and token records in DynamoDB.

Every change that touches a customer and its tokens goes in one transaction, so nothing
is half-written: a customer is never left without its token record or the reverse.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..core.errors import Conflict, NotFound
from ..core.items import from_item, to_item
from ..core.schema import TableNames
from .dynamo import is_condition_failure, scan_all


class CustomerStore:
    def __init__(self, client, tables: TableNames, page_size: int | None = None):
        self.client = client
        self.tables = tables
        self.page_size = page_size  # tests use tiny pages to prove pagination

    # ---- reads

    def get(self, customer_id: str) -> dict[str, Any]:
        got = self.client.get_item(
            TableName=self.tables.customers,
            Key={"customer_id": {"S": customer_id}},
            ConsistentRead=True,
        )
        if "Item" not in got:
            raise NotFound(f"no customer with id {customer_id}")
        return from_item(got["Item"])

    def scan(self) -> Iterator[dict[str, Any]]:
        return scan_all(self.client, self.tables.customers, page_size=self.page_size)

    def tokens(self, hashes: list[str]) -> list[dict[str, Any]]:
        hashes = [h for h in dict.fromkeys(hashes) if h]
        if not hashes:
            return []
        keys = [{"token_hash": {"S": h}} for h in hashes]
        found: list[dict[str, Any]] = []
        request = {self.tables.tokens: {"Keys": keys, "ConsistentRead": True}}
        while request:
            got = self.client.batch_get_item(RequestItems=request)
            found += [from_item(i) for i in got.get("Responses", {}).get(self.tables.tokens, [])]
            request = got.get("UnprocessedKeys") or {}
        order = {h: i for i, h in enumerate(hashes)}
        return sorted(found, key=lambda t: order.get(t["token_hash"], 99))

    # ---- writes

    def create(self, customer: dict[str, Any], token: dict[str, Any]) -> None:
        """Customer and its first token together; refuses an id or token already in use."""
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.tables.customers,
                            "Item": to_item(customer),
                            "ConditionExpression": "attribute_not_exists(customer_id)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.tables.tokens,
                            "Item": to_item(token),
                            "ConditionExpression": "attribute_not_exists(token_hash)",
                        }
                    },
                ]
            )
        except Exception as exc:
            if is_condition_failure(exc):
                raise Conflict("that token (or customer id) is already in use") from None
            raise

    def rotate(
        self,
        customer_id: str,
        new_token: dict[str, Any],
        old_hash: str | None,
        old_update: dict[str, Any] | None,
        ended_hash: str | None,
        ended_update: dict[str, Any] | None,
        customer_update: dict[str, Any],
        customer_removals: tuple[str, ...] = (),
    ) -> None:
        """Issue ``new_token``; move the current token to grace (or revoke it); end the
        previous one's grace. Conditional on the current token being the one we read, so
        two rotations at once cannot both succeed."""
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.tables.tokens,
                    "Item": to_item(new_token),
                    "ConditionExpression": "attribute_not_exists(token_hash)",
                }
            }
        ]
        for token_hash, changes in ((old_hash, old_update), (ended_hash, ended_update)):
            if token_hash and changes:
                items.append(self._token_update(token_hash, changes))
        expr, names, values = _set_expression(customer_update, customer_removals)
        cond = "attribute_exists(customer_id) AND "
        if old_hash:
            cond += "current_token_hash = :expected_current"
            values[":expected_current"] = {"S": old_hash}
        else:
            cond += "attribute_not_exists(current_token_hash)"
        items.append(
            {
                "Update": {
                    "TableName": self.tables.customers,
                    "Key": {"customer_id": {"S": customer_id}},
                    "UpdateExpression": expr,
                    "ConditionExpression": cond,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        )
        try:
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            if _put_was_refused(exc):  # item 0: the new token's hash is a known token's
                raise Conflict(
                    "that token is already in use: supply a new one, or omit --token"
                ) from None
            if is_condition_failure(exc):
                raise Conflict(
                    "the customer's tokens changed while rotating (another rotation?): try again"
                ) from None
            raise

    def update_tokens(
        self,
        changes: dict[str, dict[str, Any]],
        customer_id: str,
        customer_update: dict[str, Any],
        customer_removals: tuple[str, ...] = (),
        expected: dict[str, str | None] | None = None,
    ) -> None:
        """Update several token records and the customer item in one transaction.

        ``expected``: attribute -> value read before (None: absent). The write is conditional
        on them, so a rotation that lands between the read and this write is not undone (it
        would leave a working token the customer item no longer names)."""
        items = [self._token_update(h, c) for h, c in changes.items()]
        update = self._customer_update(customer_id, customer_update, customer_removals)
        for i, (attr, value) in enumerate(sorted((expected or {}).items())):
            body = update["Update"]
            body["ExpressionAttributeNames"][f"#e{i}"] = attr
            if value is None:
                body["ConditionExpression"] += f" AND attribute_not_exists(#e{i})"
            else:
                body.setdefault("ExpressionAttributeValues", {})[f":e{i}"] = {"S": value}
                body["ConditionExpression"] += f" AND #e{i} = :e{i}"
        items.append(update)
        try:
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            if is_condition_failure(exc):
                raise Conflict(
                    "the customer's tokens changed meanwhile (a rotation?): check with `show` "
                    "and try again"
                ) from None
            raise

    def update(
        self,
        customer_id: str,
        changes: dict[str, Any],
        removals: tuple[str, ...] = (),
        expected_updated_at: str | None = None,
    ) -> dict[str, Any]:
        """SET ``changes`` and REMOVE ``removals`` on an existing customer; returns the item.

        ``expected_updated_at``: for a read-modify-write (a plan history), the write only
        succeeds if nobody changed the customer since it was read."""
        update = self._customer_update(customer_id, changes, removals)["Update"]
        if expected_updated_at is not None:
            update["ConditionExpression"] += " AND updated_at = :read_at"
            update.setdefault("ExpressionAttributeValues", {})[":read_at"] = {
                "S": expected_updated_at
            }
        try:
            got = self.client.update_item(**update, ReturnValues="ALL_NEW")
        except Exception as exc:
            if is_condition_failure(exc):
                if expected_updated_at is not None:
                    raise Conflict(
                        "the customer changed while updating it: check with `show` and try again"
                    ) from None
                raise NotFound(f"no customer with id {customer_id}") from None
            raise
        return from_item(got["Attributes"])

    # ---- helpers

    def _token_update(self, token_hash: str, changes: dict[str, Any]) -> dict[str, Any]:
        return token_update(self.tables, token_hash, changes)

    def _customer_update(
        self, customer_id: str, changes: dict[str, Any], removals: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        expr, names, values = _set_expression(changes, removals)
        update = {
            "TableName": self.tables.customers,
            "Key": {"customer_id": {"S": customer_id}},
            "UpdateExpression": expr,
            "ConditionExpression": "attribute_exists(customer_id)",
            "ExpressionAttributeNames": names,
        }
        if values:
            update["ExpressionAttributeValues"] = values
        return {"Update": update}


def token_update(tables, token_hash: str, changes: dict[str, Any]) -> dict[str, Any]:
    """A transaction's ``Update`` of an existing token item (never creates one)."""
    expr, names, values = _set_expression(changes)
    return {
        "Update": {
            "TableName": tables.tokens,
            "Key": {"token_hash": {"S": token_hash}},
            "UpdateExpression": expr,
            "ConditionExpression": "attribute_exists(token_hash)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def _set_expression(
    changes: dict[str, Any], removals: tuple[str, ...] = ()
) -> tuple[str, dict[str, str], dict[str, Any]]:
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets = []
    for i, (key, value) in enumerate(sorted(changes.items())):
        names[f"#s{i}"] = key
        values[f":s{i}"] = to_item({"v": value})["v"]
        sets.append(f"#s{i} = :s{i}")
    removes = []
    for i, key in enumerate(removals):
        names[f"#r{i}"] = key
        removes.append(f"#r{i}")
    parts = []
    if sets:
        parts.append("SET " + ", ".join(sets))
    if removes:
        parts.append("REMOVE " + ", ".join(removes))
    return " ".join(parts), names, values


def _put_was_refused(exc: BaseException) -> bool:
    """The first item of a cancelled transaction failed its condition."""
    response = getattr(exc, "response", None) or {}
    reasons = response.get("CancellationReasons") or []
    return bool(reasons) and reasons[0].get("Code") == "ConditionalCheckFailed"
