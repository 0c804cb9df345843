"""Finalized invoices, credit notes and prepaid credit grants in DynamoDB (the invoices
table).

An invoice is written once, by one conditional write on (customer, ``INVOICE#period``):
two cron runs, or two at once, store one invoice and the loser reads the winner's. A
finalized invoice is never changed: a wrong one is voided by a credit note
(``CREDITNOTE#period``), after which the period can be issued again as revision 2
(``INVOICE#period#r02``), and so on. When credits are drawn (or a credit note gives them
back), the write and the grants' new balances go in one transaction, each grant
conditional on the balance that was read, so a grant is never drawn twice.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import Conflict
from ..core.items import to_item
from ..core.schema import (
    CREDIT_NOTE_PREFIX,
    GRANT_PREFIX,
    INVOICE_PREFIX,
    credit_note_key,
    grant_key,
    invoice_key,
)
from .dynamo import is_condition_failure, query_all


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

    def _documents(self, customer_id: str, prefix: str) -> list[dict[str, Any]]:
        rows = query_all(
            self.client,
            self.table,
            KeyConditionExpression="customer_id = :c AND begins_with(sk, :p)",
            ExpressionAttributeValues={":c": {"S": customer_id}, ":p": {"S": prefix}},
            ConsistentRead=True,
        )
        return [json.loads(r["document"]) for r in rows]

    def period_state(self, customer_id: str, period: str) -> tuple[dict | None, int, bool]:
        """(latest revision's invoice or None, its revision number or 0, voided or not)."""
        invoices = self._documents(customer_id, f"{INVOICE_PREFIX}{period}")
        if not invoices:
            return None, 0, False
        latest = max(invoices, key=lambda d: d.get("revision", 1))
        revision = latest.get("revision", 1)
        notes = self._documents(customer_id, f"{CREDIT_NOTE_PREFIX}{period}")
        voided = any(n["revision"] == revision for n in notes)
        return latest, revision, voided

    def get_invoice(self, customer_id: str, period: str) -> dict[str, Any] | None:
        """The period's invoice in force: its latest revision, unless voided."""
        latest, _, voided = self.period_state(customer_id, period)
        return None if voided else latest

    def put_invoice(
        self, invoice: dict[str, Any], grant_updates: list[tuple[str, str, str]] = ()
    ) -> None:
        """Store a finalized invoice once. ``grant_updates``: (grant_id, balance_before,
        balance_after) for each grant the invoice draws, written in the same transaction."""
        item = to_item(
            {
                "customer_id": invoice["customer_id"],
                "sk": invoice_key(invoice["period"], invoice.get("revision", 1)),
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
        return self._documents(customer_id, INVOICE_PREFIX)

    def list_credit_notes(self, customer_id: str) -> list[dict[str, Any]]:
        return self._documents(customer_id, CREDIT_NOTE_PREFIX)

    def put_credit_note(
        self, note: dict[str, Any], grant_updates: list[tuple[str, str, str]] = ()
    ) -> None:
        """Void one invoice revision, once; give back the credits it drew in the same
        transaction. The invoice itself is not touched."""
        cid, period, revision = note["customer_id"], note["period"], note["revision"]
        item = to_item(
            {
                "customer_id": cid,
                "sk": credit_note_key(period, revision),
                "credit_note_number": note["credit_note_number"],
                "document": json.dumps(note, sort_keys=True, separators=(",", ":")),
            }
        )
        key = {"customer_id": {"S": cid}, "sk": {"S": invoice_key(period, revision)}}
        items = [
            {
                "ConditionCheck": {
                    "TableName": self.table,
                    "Key": key,
                    "ConditionExpression": "attribute_exists(sk)",
                }
            },
            {
                "Put": {
                    "TableName": self.table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            },
        ]
        items += self._grant_updates(cid, grant_updates)
        try:
            self.client.transact_write_items(TransactItems=items)
        except Exception as exc:
            if is_condition_failure(exc):
                raise Conflict(
                    f"invoice {note['invoice_number']} is already voided, or changed: "
                    "check with `invoice --customer-id ... --period ...`"
                ) from None
            raise

    def _grant_updates(self, customer_id: str, updates) -> list[dict[str, Any]]:
        return [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"customer_id": {"S": customer_id}, "sk": {"S": grant_key(grant_id)}},
                    "UpdateExpression": "SET remaining = :after",
                    "ConditionExpression": "remaining = :before",
                    "ExpressionAttributeValues": {":after": {"S": after}, ":before": {"S": before}},
                }
            }
            for grant_id, before, after in updates
        ]

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
