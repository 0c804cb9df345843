"""The local SQL engine: Athena's queries run by DuckDB over the same JSON-lines files.

Used by the sandbox (its log lives in moto's S3: the period's ``dt=`` objects are copied
to a temporary folder first) and by the tests, so the SQL sent to Athena is executed for
real. DuckDB is imported lazily: it is in the ``[sandbox]`` extra, not in a production
install.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

from ..core.admissions import AbandonedRequest, abandoned_query
from ..core.errors import AwsError, BillingError
from ..core.logschema import LOG_PARTITION_KEY, duckdb_view_sql, partition_range, usage_query
from ..core.timeutil import iter_days
from ..core.usage import UsageRow
from .logsink import normalise_prefix, partition_prefix
from .usagelog import Progress, rows_by_customer


def _duckdb():
    try:
        import duckdb
    except ImportError:  # pragma: no cover - depends on the install
        raise BillingError(
            "the local engine needs DuckDB: pip install 'bedrock-billing[sandbox]'"
        ) from None
    return duckdb


class LocalSqlEngine:
    """Runs Trino-dialect SQL with ``?`` markers over ``<root>/dt=*/*`` in DuckDB.

    ``executed`` records each (sql, parameters) pair run, so tests can compare it with what
    was sent to Athena.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.executed: list[tuple[str, list]] = []

    def has_files(self) -> bool:
        return any(p.is_file() for p in self.root.glob(f"{LOG_PARTITION_KEY}=*/*"))

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        self.executed.append((sql, list(params)))
        if not self.has_files():
            return []  # read_json fails on an empty glob; no files means no lines
        duckdb = _duckdb()
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(duckdb_view_sql(str(self.root / f"{LOG_PARTITION_KEY}=*" / "*")))
            return con.execute(sql, list(params)).fetchall()
        except duckdb.Error as exc:
            raise BillingError(f"local engine query failed: {exc}") from None
        finally:
            con.close()


class LocalLogStore:
    """The usage log read by the local engine, from a folder or from an S3 bucket (moto)."""

    engine = "local"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        s3_client=None,
        bucket: str | None = None,
        prefix: str = "logs/",
    ):
        if (root is None) == (s3_client is None):
            raise ValueError("give either a folder or an S3 client and bucket")
        self.root = Path(root) if root is not None else None
        self._s3 = s3_client
        self.bucket = bucket
        self.prefix = normalise_prefix(prefix)
        self.last_engine: LocalSqlEngine | None = None
        self.copied_objects = 0

    @classmethod
    def from_s3(cls, s3_client, bucket: str, prefix: str = "logs/") -> LocalLogStore:
        return cls(s3_client=s3_client, bucket=bucket, prefix=prefix)

    def read_usage(
        self,
        first: date,
        last: date,
        customer_ids: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> dict[str, list[UsageRow]]:
        if self.root is not None:
            return self._read(self.root, first, last, customer_ids, progress)
        with tempfile.TemporaryDirectory(prefix="bedrock-billing-log-") as tmp:
            self._copy_partitions(Path(tmp), first, last, progress)
            return self._read(Path(tmp), first, last, customer_ids, progress)

    def query_range(self, first: date, last: date, sql: str, params: Sequence,
                    progress: Progress | None = None) -> list[tuple]:  # fmt: skip
        """Run another log query (core/billedusage.py) over the lines of ``first``..``last``."""
        if self.root is not None:
            engine = self.last_engine = LocalSqlEngine(self.root)
            return engine.query(sql, params)
        with tempfile.TemporaryDirectory(prefix="bedrock-billing-log-") as tmp:
            self._copy_partitions(Path(tmp), first, last, progress)
            engine = self.last_engine = LocalSqlEngine(tmp)
            return engine.query(sql, params)

    def read_abandoned(
        self,
        first: date,
        last: date,
        customer_ids: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> list[AbandonedRequest]:
        """Admitted requests of ``first``..``last`` without an outcome (core/admissions.py)."""
        if self.root is not None:
            return self._abandoned(self.root, first, last, customer_ids)
        with tempfile.TemporaryDirectory(prefix="bedrock-billing-log-") as tmp:
            # One day wider than a usage read: the outcomes' partitions (core/admissions.py)
            self._copy_partitions(
                Path(tmp), first - timedelta(days=1), last + timedelta(days=1), progress
            )
            return self._abandoned(Path(tmp), first, last, customer_ids)

    def _abandoned(self, root, first, last, customer_ids) -> list[AbandonedRequest]:
        engine = self.last_engine = LocalSqlEngine(root)
        ids: list[str | None] = [None] if customer_ids is None else list(customer_ids)
        out: list[AbandonedRequest] = []
        for customer_id in ids:
            sql, params = abandoned_query(first, last, customer_id)
            out.extend(AbandonedRequest.from_record(r) for r in engine.query(sql, params))
        return out

    def _read(self, root, first, last, customer_ids, progress) -> dict[str, list[UsageRow]]:
        engine = self.last_engine = LocalSqlEngine(root)
        ids: list[str | None] = [None] if customer_ids is None else list(customer_ids)
        out: dict[str, list[UsageRow]] = {}
        for i, customer_id in enumerate(ids):
            if progress:
                progress(i, len(ids), "querying the local usage log")
            sql, params = usage_query(first, last, customer_id)
            for key, rows in rows_by_customer(engine.query(sql, params)).items():
                out.setdefault(key, []).extend(rows)
        if progress:
            progress(len(ids), len(ids), "done")
        return out

    def _copy_partitions(self, target: Path, first: date, last: date, progress) -> None:
        """Copy the ``dt=`` objects of the widened range from S3 (one listing per day)."""
        from botocore.exceptions import BotoCoreError, ClientError

        dt_from, dt_to = partition_range(first, last)
        days = list(iter_days(date.fromisoformat(dt_from), date.fromisoformat(dt_to)))
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for i, day in enumerate(days):
                if progress:
                    progress(i, len(days), f"copying {LOG_PARTITION_KEY}={day} from S3")
                prefix = partition_prefix(self.prefix, day.isoformat())
                folder = target / f"{LOG_PARTITION_KEY}={day.isoformat()}"
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                    for obj in page.get("Contents", []):
                        name = obj["Key"][len(prefix) :].replace("/", "_")
                        if not name:
                            continue
                        folder.mkdir(parents=True, exist_ok=True)
                        body = self._s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"]
                        with open(folder / name, "wb") as handle:
                            shutil.copyfileobj(body, handle)
                        self.copied_objects += 1
        except (ClientError, BotoCoreError) as exc:
            raise AwsError(f"cannot read the usage log from s3://{self.bucket}: {exc}") from None
