"""The proxy's usage counters in DynamoDB: DAY# items, read per customer and period.

A customer's DAY# items sit under their partition key, sorted by date
(``DAY#YYYY-MM-DD#<model>``), so any date range is ONE paginated key-range Query per
customer (``sk BETWEEN`` core/schema.py day_range), never one call per day.
``--repair`` rewrites a past day's items from the log with SET (idempotent), never ADD.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from ..awsclient import aws_error
from ..core.errors import AwsError
from ..core.schema import DAY_COUNTERS, day_key, day_range, parse_day_key
from ..core.timeutil import Clock, iso_z, system_clock
from ..core.usage import COUNTERS, UsageRow
from .usagelog import Progress

assert tuple(DAY_COUNTERS) == COUNTERS  # noqa: S101 - the item and the row agree


def _aws_error(action: str, exc: Exception, table: str) -> AwsError:
    """The shared one-line translation (awsclient.py), else a generic line. A missing table
    is named, with the way out, as the customer commands do (core.schema.missing_table_hint)."""
    hint = (
        f"table {table} does not exist: run `bedrock-billing init` "
        "(or check --stage, --region and --endpoint-url)"
    )
    translated = aws_error(exc, resource_hint=hint)
    if translated is not None:
        return translated
    return AwsError(f"DynamoDB {action} failed: {type(exc).__name__}")


def _int(attr: dict | None) -> int:
    if not attr:
        return 0
    return int(attr.get("N", "0"))


class CounterStore:
    """Reads (and, for repair, rewrites) DAY# counter items of the usage table."""

    engine = "dynamodb"

    def __init__(self, client, table: str, *, page_size: int | None = None):
        self._ddb = client
        self.table = table
        self._page_size = page_size  # tests use a small page to exercise pagination

    def read_customer(self, customer_id: str, first: date, last: date) -> list[UsageRow]:
        """Every DAY# item of one customer from ``first`` to ``last``: one Query, paginated."""
        from botocore.exceptions import BotoCoreError, ClientError

        low, high = day_range(first, last)
        kwargs = {
            "TableName": self.table,
            "KeyConditionExpression": "customer_id = :c AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":c": {"S": customer_id},
                ":lo": {"S": low},
                ":hi": {"S": high},
            },
            "ConsistentRead": True,
        }
        if self._page_size:
            kwargs["Limit"] = self._page_size
        rows = []
        try:
            while True:
                page = self._ddb.query(**kwargs)
                for item in page.get("Items", []):
                    day, model = parse_day_key(item["sk"]["S"])
                    rows.append(UsageRow(day, model, **{n: _int(item.get(n)) for n in COUNTERS}))
                if "LastEvaluatedKey" not in page:
                    return rows
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error("Query", exc, self.table) from None

    def read_usage(
        self,
        first: date,
        last: date,
        customer_ids: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> dict[str, list[UsageRow]]:
        """Rows per customer; the counters are per customer, so ``customer_ids`` is required."""
        if customer_ids is None:
            raise ValueError("the counters are read per customer: give the customer ids")
        ids = list(customer_ids)
        out: dict[str, list[UsageRow]] = {}
        for i, customer_id in enumerate(ids):
            if progress:
                progress(i, len(ids), customer_id)
            out[customer_id] = self.read_customer(customer_id, first, last)
        if progress:
            progress(len(ids), len(ids), "done")
        return out

    def replace_day(
        self,
        customer_id: str,
        day: date,
        rows: Sequence[UsageRow],
        *,
        clock: Clock = system_clock,
    ) -> int:
        """Make the DAY# items of one customer's day equal ``rows`` (SET; idempotent).

        Items for models the rows do not have are deleted. Returns the number of writes.
        The METER# admission meter is not touched: it governs limits, not invoices.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        wanted = {row.model: row for row in rows if row.day == day and not row.is_zero()}
        existing = {r.model for r in self.read_customer(customer_id, day, day)}
        now = iso_z(clock())
        writes = 0
        try:
            for model, row in sorted(wanted.items()):
                names = {f"#c{i}": n for i, n in enumerate(COUNTERS)}
                values = {f":v{i}": {"N": str(getattr(row, n))} for i, n in enumerate(COUNTERS)}
                values[":at"] = {"S": now}
                sets = ", ".join(f"#c{i} = :v{i}" for i in range(len(COUNTERS)))
                self._ddb.update_item(
                    TableName=self.table,
                    Key={"customer_id": {"S": customer_id}, "sk": {"S": day_key(day, model)}},
                    UpdateExpression=f"SET {sets}, repaired_at = :at",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
                writes += 1
            for model in sorted(existing - set(wanted)):
                self._ddb.delete_item(
                    TableName=self.table,
                    Key={"customer_id": {"S": customer_id}, "sk": {"S": day_key(day, model)}},
                )
                writes += 1
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error("repair write", exc, self.table) from None
        return writes

    def book_repaired(
        self,
        customer_id: str,
        day: date,
        model: str,
        counts: dict[str, int],
        bedrock_request_id: str,
        *,
        clock: Clock = system_clock,
    ) -> bool:
        """ADD one request Bedrock served and the proxy never counted to its DAY# item, once:
        a ``REPAIR#<bedrock request id>`` marker is written in the same transaction, on
        condition it is not there yet. Returns False when it was booked before (nothing
        written). The METER# admission meter is not touched: it governs limits, not invoices.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        names = {f"#c{i}": n for i, n in enumerate(COUNTERS) if counts.get(n)}
        adds = ", ".join(f"{k} :v{k[2:]}" for k in names)
        values = {f":v{k[2:]}": {"N": str(int(counts[n]))} for k, n in names.items()}
        key = {"customer_id": {"S": customer_id}}
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                **key,
                                "sk": {"S": REPAIR_PREFIX + bedrock_request_id},
                                "day": {"S": day.isoformat()},
                                "model": {"S": model},
                                "booked_at": {"S": iso_z(clock())},
                            },
                            "ConditionExpression": "attribute_not_exists(sk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": {**key, "sk": {"S": day_key(day, model)}},
                            "UpdateExpression": f"ADD {adds}",
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if reasons and (reasons[0] or {}).get("Code") == "ConditionalCheckFailed":
                return False
            raise _aws_error("repair booking", exc, self.table) from None
        except BotoCoreError as exc:
            raise _aws_error("repair booking", exc, self.table) from None
        return True


REPAIR_PREFIX = "REPAIR#"  # sk of the marker of one booked Bedrock request


def scan_customer_ids(client, customers_table: str) -> list[str]:
    """Every customer id in the customers table (a paginated, projected Scan), sorted."""
    from botocore.exceptions import BotoCoreError, ClientError

    ids = []
    kwargs = {"TableName": customers_table, "ProjectionExpression": "customer_id"}
    try:
        while True:
            page = client.scan(**kwargs)
            ids.extend(item["customer_id"]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(ids)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error("Scan", exc, customers_table) from None
