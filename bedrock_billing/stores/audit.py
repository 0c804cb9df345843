"""The audit trail in DynamoDB, in the invoices table (the operator's ledger; the proxy never
touches it): records under the partition ``AUDIT`` (sort key ``REC#`` and a 12-digit
sequence number), the chain's head in an item apart (partition ``AUDIT#HEAD``).

An append is one transaction: the record, put only if its sort key is new, and the head,
updated only if it still names the record before. Two writers at once cannot both append
the same number; the loser re-reads the head and tries again.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.audit import GENESIS, seal
from ..core.items import from_item, to_item
from .dynamo import is_condition_failure, query_all

RECORDS_PK = "AUDIT"
HEAD_PK = "AUDIT#HEAD"
HEAD_SK = "HEAD"
APPEND_ATTEMPTS = 5


def record_key(seq: int) -> str:
    return f"REC#{seq:012d}"


class AuditStore:
    def __init__(self, client, table: str):
        self.client = client
        self.table = table

    def head(self) -> dict[str, Any] | None:
        got = self.client.get_item(
            TableName=self.table,
            Key={"customer_id": {"S": HEAD_PK}, "sk": {"S": HEAD_SK}},
            ConsistentRead=True,
        )
        return from_item(got["Item"]) if "Item" in got else None

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        # As DynamoDB will give it back: plain JSON values (a Decimal as its text), no None at
        # the top (an absent attribute), so the hash read back is the hash written.
        plain = json.loads(json.dumps(record, default=str))
        record = {k: v for k, v in plain.items() if v is not None}
        for attempt in range(APPEND_ATTEMPTS):
            head = self.head()
            seq = (head["seq"] if head else 0) + 1
            sealed = seal(record, seq, head["hash"] if head else GENESIS)
            item = {"customer_id": RECORDS_PK, "sk": record_key(seq), **sealed}
            head_update: dict[str, Any] = {
                "TableName": self.table,
                "Key": {"customer_id": {"S": HEAD_PK}, "sk": {"S": HEAD_SK}},
                "UpdateExpression": "SET #seq = :seq, #hash = :hash",
                "ExpressionAttributeNames": {"#seq": "seq", "#hash": "hash"},
                "ExpressionAttributeValues": {
                    ":seq": {"N": str(seq)},
                    ":hash": {"S": sealed["hash"]},
                },
            }
            if head:
                head_update["ConditionExpression"] = "#seq = :prev"
                head_update["ExpressionAttributeValues"][":prev"] = {"N": str(head["seq"])}
            else:
                head_update["ConditionExpression"] = "attribute_not_exists(#seq)"
            try:
                self.client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": to_item(item),
                                "ConditionExpression": "attribute_not_exists(sk)",
                            }
                        },
                        {"Update": head_update},
                    ]
                )
                return sealed
            except Exception as exc:
                if not is_condition_failure(exc) or attempt == APPEND_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def records(self) -> list[dict[str, Any]]:
        out = []
        for item in query_all(
            self.client,
            self.table,
            KeyConditionExpression="customer_id = :p AND begins_with(sk, :r)",
            ExpressionAttributeValues={":p": {"S": RECORDS_PK}, ":r": {"S": "REC#"}},
            ConsistentRead=True,
        ):
            item.pop("customer_id", None)
            item.pop("sk", None)
            out.append(item)
        return out
