"""DynamoDB plumbing for the CLI side: paginated reads (items through the core's one codec,
``core.items``, which the proxy uses too) and the tables themselves (``init`` creates what
is missing; the first write creates them too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..awsclient import aws_error
from ..core.errors import AwsError
from ..core.items import from_item
from ..core.schema import TABLE_KEYS, TTL_ATTRIBUTE, TableNames, missing_table_hint

Notify = Callable[[str], None]


def _pages(call, params: dict) -> Iterator[dict]:
    while True:
        page = call(**params)
        for item in page.get("Items", []):
            yield from_item(item)
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        params["ExclusiveStartKey"] = last


def scan_all(client, table: str, page_size: int | None = None, **kwargs) -> Iterator[dict]:
    """Every item of a table, following LastEvaluatedKey across all pages."""
    params = {"TableName": table, **kwargs}
    if page_size:
        params["Limit"] = page_size
    return _pages(client.scan, params)


def query_all(client, table: str, page_size: int | None = None, **kwargs) -> Iterator[dict]:
    """Every item of a Query, following LastEvaluatedKey across all pages."""
    params = {"TableName": table, **kwargs}
    if page_size:
        params["Limit"] = page_size
    return _pages(client.query, params)


def table_definition(logical: str, physical: str) -> dict[str, Any]:
    pk, sk = TABLE_KEYS[logical]
    keys = [{"AttributeName": pk, "KeyType": "HASH"}]
    attrs = [{"AttributeName": pk, "AttributeType": "S"}]
    if sk:
        keys.append({"AttributeName": sk, "KeyType": "RANGE"})
        attrs.append({"AttributeName": sk, "AttributeType": "S"})
    return {
        "TableName": physical,
        "KeySchema": keys,
        "AttributeDefinitions": attrs,
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"Enabled": True},
        "Tags": [{"Key": "managed-by", "Value": "bedrock-billing"}],
    }


def existing_tables(client, tables: TableNames) -> dict[str, bool]:
    """Which of the installation's tables exist (logical name -> bool)."""
    import botocore.exceptions

    found = {}
    for logical, physical in tables.as_dict().items():
        try:
            client.describe_table(TableName=physical)
            found[logical] = True
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            found[logical] = False
    return found


def create_missing_tables(client, tables: TableNames, notify: Notify | None = None) -> list[dict]:
    """Create every missing table (on demand, encrypted, TTL, point-in-time recovery).

    Safe to run twice: existing tables are reported and left alone (a deployed stack owns
    its tables; this never changes them). Returns one status row per table.
    """
    import botocore.exceptions

    rows = []
    exists = existing_tables(client, tables)
    created = []
    for logical, physical in tables.as_dict().items():
        if exists[logical]:
            rows.append({"table": physical, "role": logical, "status": "exists"})
            continue
        try:
            client.create_table(**table_definition(logical, physical))
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
            rows.append({"table": physical, "role": logical, "status": "exists"})
            continue
        created.append((logical, physical))
        rows.append({"table": physical, "role": logical, "status": "created"})
        if notify:
            notify(f"created table {physical}")
    waiter = client.get_waiter("table_exists")
    for logical, physical in created:
        waiter.wait(TableName=physical, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
        if logical in TTL_ATTRIBUTE:
            client.update_time_to_live(
                TableName=physical,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE[logical]},
            )
        client.update_continuous_backups(
            TableName=physical,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    return rows


def is_missing_table(exc: BaseException) -> bool:
    import botocore.exceptions

    return (
        isinstance(exc, botocore.exceptions.ClientError)
        and exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException"
    )


def is_condition_failure(exc: BaseException) -> bool:
    """A failed ConditionExpression, alone or inside a cancelled transaction."""
    import botocore.exceptions

    if not isinstance(exc, botocore.exceptions.ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons") or []
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return False


def translate(exc: BaseException, tables: TableNames) -> AwsError | None:
    err = aws_error(exc, resource_hint=missing_table_hint(tables))
    return err if isinstance(err, AwsError) else None
