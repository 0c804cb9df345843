"""Finalized invoices and prepaid credit grants in DynamoDB (the invoices table).

An invoice is written once, by one conditional write on (customer, ``INVOICE#period``):
two cron runs, or two at once, store one invoice and the loser reads the winner's. A
finalized invoice is never changed. When credits are drawn, the invoice and the grants'
new balances go in one transaction, each grant conditional on the balance that was read,
so a grant is never drawn twice.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import Conflict
from ..core.schema import GRANT_PREFIX, INVOICE_PREFIX, grant_key, invoice_key
from .dynamo import from_item, is_condition_failure, query_all, to_item


class InvoiceExists(Conflict):
    """The (customer, period) invoice was already issued; ``existing`` holds it."""

    def __init__(self, existing: dict[str, Any]):
        super().__init__(f"invoice {existing.get('invoice_number')} was already issued")
        self.existing = existing


class InvoiceStore:
    def __init__(self, client, table: str):
        self.client = client
        self.table = table

    # ---- invoices

    def get_invoice(self, customer_id: str, period: str) -> dict[str, Any] | None:
        got = self.client.get_item(
            TableName=self.table,
            Key={"customer_id": {"S": customer_id}, "sk": {"S": invoice_key(period)}},
            ConsistentRead=True,
        )
        return _invoice(got["Item"]) if "Item" in got else None

    def put_invoice(
        self, invoice: dict[str, Any], grant_updates: list[tuple[str, str, str]] = ()
    ) -> None:
        """Store a finalized invoice once. ``grant_updates``: (grant_id, balance_before,
        balance_after) for each grant the invoice draws, written in the same transaction."""
        item = to_item(
            {
                "customer_id": invoice["customer_id"],
                "sk": invoice_key(invoice["period"]),
                "invoice_number": invoice["invoice_number"],
                "period": invoice["period"],
                "status": invoice["status"],
                "issued_at": invoice["issued_at"],
                "total_cents": invoice["total_cents"],
                "currency": invoice["currency"],
                "price_book_hash": invoice["price_book_hash"],
                "document": json.dumps(invoice, sort_keys=True, separators=(",", ":")),
            }
        )
        condition = "attribute_not_exists(sk)"
        try:
            if not grant_updates:
                self.client.put_item(TableName=self.table, Item=item, ConditionExpression=condition)
                return
            items = [
                {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": condition}}
            ]
            for grant_id, before, after in grant_updates:
                items.append(
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": {
                                "customer_id": {"S": invoice["customer_id"]},
                                "sk": {"S": grant_key(grant_id)},
                            },
                            "UpdateExpression": "SET remaining = :after",
                            "ConditionExpression": "remaining = :before",
                            "ExpressionAttributeValues": {
                                ":after": {"S": after},
                                ":before": {"S": before},
                            },
                        }
                    }
                )
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            if not is_condition_failure(exc):
                raise
            existing = self.get_invoice(invoice["customer_id"], invoice["period"])
            if existing is None:  # a grant's balance moved under us: safe to run again
                raise Conflict(
                    "a credit grant changed while issuing the invoice: run the command again"
                ) from None
            raise InvoiceExists(existing) from None

    def list_invoices(self, customer_id: str) -> list[dict[str, Any]]:
        rows = query_all(
            self.client,
            self.table,
            KeyConditionExpression="customer_id = :c AND begins_with(sk, :p)",
            ExpressionAttributeValues={":c": {"S": customer_id}, ":p": {"S": INVOICE_PREFIX}},
        )
        return [json.loads(r["document"]) for r in rows]

    # ---- credit grants

    def put_grant(self, customer_id: str, grant: dict[str, Any]) -> None:
        self.client.put_item(
            TableName=self.table,
            Item=to_item({"customer_id": customer_id, "sk": grant_key(grant["grant_id"]), **grant}),
            ConditionExpression="attribute_not_exists(sk)",
        )

    def grants(self, customer_id: str) -> list[dict[str, Any]]:
        rows = query_all(
            self.client,
            self.table,
            KeyConditionExpression="customer_id = :c AND begins_with(sk, :p)",
            ExpressionAttributeValues={":c": {"S": customer_id}, ":p": {"S": GRANT_PREFIX}},
            ConsistentRead=True,
        )
        return [{k: v for k, v in r.items() if k != "sk"} for r in rows]


def _invoice(item: dict[str, Any]) -> dict[str, Any]:
    return json.loads(from_item(item)["document"])
