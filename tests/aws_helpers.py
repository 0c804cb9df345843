"""AWS set-up shared by the tests (fixtures for credentials and moto live in conftest.py)."""

from __future__ import annotations

from bedrock_billing.core.schema import TableNames
from bedrock_billing.stores.dynamo import create_missing_tables


def create_tables(client, tables: TableNames) -> None:
    """The installation's tables, made exactly as `init` makes them (stores/dynamo.py)."""
    create_missing_tables(client, tables)
