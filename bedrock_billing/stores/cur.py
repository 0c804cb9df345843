"""The AWS Cost and Usage Report 2.0 (a Data Exports export) as a source of Bedrock line
items: Athena over the export's own table, or DuckDB over the export's Parquet files.

Data Exports writes ``<prefix>/<export name>/data/BILLING_PERIOD=YYYY-MM/*.parquet`` and
replaces a period's files at each refresh (at least daily, until the bill is final). The
local engine copies one period's folder from S3 and runs the very SQL text Athena runs
(core/billedusage.py) over a view named like the table; the one function Trino has and
DuckDB spells differently, ``element_at`` on a map, is defined as a macro.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from ..core.billedusage import CUR_COLUMNS, CUR_TABLE, cur_query
from ..core.errors import AwsError, BillingError
from ..core.timeutil import Period

PARTITION = "BILLING_PERIOD"


def period_prefix(prefix: str, period: Period) -> str:
    """The S3 folder of one period's files under an export's ``.../data/`` prefix."""
    prefix = prefix.strip("/")
    return f"{prefix}/{PARTITION}={period}/" if prefix else f"{PARTITION}={period}/"


def rows(records: Sequence[Sequence]) -> list[dict]:
    out = []
    for record in records:
        row = dict(zip(CUR_COLUMNS, record, strict=True))
        for key in ("usage_amount", "unblended_cost"):
            row[key] = Decimal(str(row[key] or 0))
        for key in ("line_items", "open_line_items"):
            row[key] = int(row[key] or 0)
        out.append(row)
    return out


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class LocalCurStore:
    """A CUR 2.0 export's Parquet files read by DuckDB: from a folder holding
    ``BILLING_PERIOD=...`` folders, or from S3 (copied to a temporary folder first)."""

    engine = "local"

    def __init__(self, root: str | Path | None = None, *, s3_client=None, bucket=None,
                 prefix: str = ""):  # fmt: skip
        if (root is None) == (s3_client is None):
            raise ValueError("give either a folder or an S3 client and bucket")
        self.root = Path(root) if root is not None else None
        self._s3, self.bucket, self.prefix = s3_client, bucket, prefix
        self.executed: list[tuple[str, list]] = []

    def read_period(self, period: Period, progress=None) -> list[dict]:
        if self.root is not None:
            return self._query(self.root, period)
        with tempfile.TemporaryDirectory(prefix="bedrock-billing-cur-") as tmp:
            self._copy(Path(tmp), period)
            return self._query(Path(tmp), period)

    def _query(self, root: Path, period: Period) -> list[dict]:
        sql, params = cur_query(period)
        self.executed.append((sql, params))
        folder = root / f"{PARTITION}={period}"
        parquet = sorted(folder.glob("*.parquet"))
        csv = sorted(p for p in folder.glob("*") if p.name.endswith((".csv", ".csv.gz")))
        if not parquet and not csv:
            return []
        try:
            import duckdb
        except ImportError:  # pragma: no cover - depends on the install
            raise BillingError(
                "the local engine needs DuckDB: pip install 'bedrock-billing[sandbox]'"
            ) from None
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("CREATE OR REPLACE TEMP MACRO element_at(m, k) AS map_extract_value(m, k)")
            hive = f"hive_partitioning = true, hive_types = {{'{PARTITION}': 'VARCHAR'}}"
            if parquet:
                glob = _quoted(folder / "*.parquet")
                source = f"read_parquet({glob}, {hive}, union_by_name = true)"
            else:
                # CSV exports write the map columns as JSON text, and every value as text
                # (read as such: costs are cast to DECIMAL from their exact digits).
                files = ", ".join(_quoted(p) for p in csv)
                source = (
                    f"(SELECT * REPLACE (TRY_CAST(CAST(NULLIF(product, '') AS JSON) AS "
                    f"MAP(VARCHAR, VARCHAR)) AS product) FROM read_csv([{files}], header = true, "
                    f"all_varchar = true, {hive}, union_by_name = true))"
                )
            con.execute(f"CREATE OR REPLACE VIEW {CUR_TABLE} AS SELECT * FROM {source}")
            return rows(con.execute(sql, params).fetchall())
        except duckdb.Error as exc:
            raise BillingError(f"local engine query of the CUR failed: {exc}") from None
        finally:
            con.close()

    def _copy(self, target: Path, period: Period) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = period_prefix(self.prefix, period)
        folder = target / f"{PARTITION}={period}"
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(prefix) :].replace("/", "_")
                    if not name.endswith((".parquet", ".csv", ".csv.gz")):
                        continue
                    folder.mkdir(parents=True, exist_ok=True)
                    body = self._s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"]
                    with open(folder / name, "wb") as handle:
                        shutil.copyfileobj(body, handle)
        except (ClientError, BotoCoreError) as exc:
            raise AwsError(f"cannot read the CUR export from s3://{self.bucket}: {exc}") from None


class AthenaCurStore:
    """The export's table in Athena (``database.table``), through the usage log's Athena
    connection (the same workgroup and results location)."""

    engine = "athena"

    def __init__(self, athena, table: str):
        self._athena, self.table = athena, table

    def read_period(self, period: Period, progress=None) -> list[dict]:
        sql, params = cur_query(period, self.table)
        return rows(self._athena.execute(sql, params, progress))


def write_cur_parquet(path: str | Path, items: Sequence[dict], fmt: str = "parquet") -> Path:
    """Write CUR 2.0-shaped line items (the columns core/billedusage.py reads) to one
    Parquet file with DuckDB, as the sandbox's stand-in for a Data Exports refresh."""
    import duckdb

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:")
    try:
        con.execute(
            "CREATE TABLE cur (bill_billing_period_start_date TIMESTAMP, "
            "bill_billing_period_end_date TIMESTAMP, bill_bill_type VARCHAR, "
            "bill_invoice_id VARCHAR, line_item_line_item_type VARCHAR, "
            "line_item_product_code VARCHAR, line_item_usage_type VARCHAR, "
            "line_item_usage_start_date TIMESTAMP, line_item_usage_amount DOUBLE, "
            "line_item_unblended_cost DOUBLE, pricing_unit VARCHAR, "
            "product_region_code VARCHAR, product MAP(VARCHAR, VARCHAR))"
        )
        for item in items:
            con.execute(
                "INSERT INTO cur VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "MAP {'product_name': ?})",
                [
                    item["bill_billing_period_start_date"],
                    item["bill_billing_period_end_date"],
                    item.get("bill_bill_type", "Anniversary"),
                    item.get("bill_invoice_id") or "",
                    item.get("line_item_line_item_type", "Usage"),
                    item["line_item_product_code"],
                    item["line_item_usage_type"],
                    item["line_item_usage_start_date"],
                    float(item["line_item_usage_amount"]),
                    float(item["line_item_unblended_cost"]),
                    item.get("pricing_unit", "tokens"),
                    item.get("product_region_code", "us-east-1"),
                    item["product_name"],
                ],
            )
        target = str(path).replace("'", "''")
        if fmt == "csv":  # as a CSV export: the map as JSON text, compressed
            con.execute(
                f"COPY (SELECT * REPLACE (CAST(product AS JSON) AS product) FROM cur) TO "
                f"'{target}' (FORMAT csv, HEADER, COMPRESSION gzip)"
            )
        else:
            con.execute(f"COPY cur TO '{target}' (FORMAT parquet)")
    finally:
        con.close()
    return path
