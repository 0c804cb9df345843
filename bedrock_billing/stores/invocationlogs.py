"""Bedrock's model invocation logs matched with the usage log: the match query
(core/invocationlog.py) run by Athena, or by the local engine (DuckDB) over copies of both
logs: from S3 (the sandbox, tests) or from CloudWatch Logs (Athena cannot read it).

The local engine copies the usage log's ``dt=`` partitions and the invocation log's day
folders of the range (a day wider each side) to a temporary folder, then runs the very SQL
Athena runs. ``executed`` keeps each (sql, parameters) pair, so tests compare the two.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ..core.errors import AwsError, BillingError
from ..core.invocationlog import (
    COLUMNS,
    INVOCATION_TABLE,
    MATCH_COLUMNS,
    PARTITION,
    day_folder,
    duckdb_view_sql,
    match_query,
    s3_prefix,
    untagged_query,
)
from ..core.logschema import LOG_PARTITION_KEY, LOG_TABLE, duckdb_columns
from ..core.logschema import duckdb_view_sql as usage_view_sql
from ..core.timeutil import iter_days
from .usagelog import Progress

CLOUDWATCH_STREAM = "aws/bedrock/modelinvocations"


def _rows(records: Sequence[Sequence]) -> list[dict]:
    return [dict(zip(MATCH_COLUMNS, r, strict=True)) for r in records]


class LocalInvocationMatcher:
    """Runs the match in DuckDB over two folders: the usage log (``dt=YYYY-MM-DD/``) and
    the invocation log (``YYYY/MM/DD/HH/*.json[.gz]``)."""

    engine = "local"

    def __init__(self, usage_root: Path, invocation_root: Path):
        self.usage_root, self.invocation_root = Path(usage_root), Path(invocation_root)
        self.executed: list[tuple[str, list]] = []

    def _views(self, con) -> None:
        if any(p.is_file() for p in self.usage_root.glob(f"{LOG_PARTITION_KEY}=*/*")):
            con.execute(usage_view_sql(str(self.usage_root / f"{LOG_PARTITION_KEY}=*" / "*")))
        else:  # read_json fails on an empty glob: an empty view of the same columns
            cols = {**duckdb_columns(), LOG_PARTITION_KEY: "VARCHAR"}
            con.execute(_empty_view(LOG_TABLE, cols))
        if any(p.is_file() for p in self.invocation_root.glob("**/*.json*")):
            con.execute(duckdb_view_sql(str(self.invocation_root / "**" / "*.json*")))
        else:
            cols = {c.name: c.duckdb_type for c in COLUMNS}
            con.execute(_empty_view(INVOCATION_TABLE, {**cols, PARTITION: "VARCHAR"}))

    def query(self, sql: str, params: Sequence) -> list[tuple]:
        from .localsql import _duckdb

        self.executed.append((sql, list(params)))
        duckdb = _duckdb()
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            self._views(con)
            return con.execute(sql, list(params)).fetchall()
        except duckdb.Error as exc:
            raise BillingError(f"local engine query failed: {exc}") from None
        finally:
            con.close()

    def match(self, first: date, last: date, installation: str) -> list[dict]:
        return _rows(self.query(*match_query(first, last, installation)))

    def untagged(self, first: date, last: date) -> int:
        (row,) = self.query(*untagged_query(first, last))
        return int(row[0] or 0)


def _empty_view(name: str, columns: dict[str, str]) -> str:
    cols = ", ".join(f'CAST(NULL AS {t}) AS "{n}"' for n, t in columns.items())
    return f"CREATE OR REPLACE VIEW {name} AS SELECT {cols} WHERE false"


class AthenaInvocationMatcher:
    """The same SQL through an :class:`~.athena.AthenaLogStore` (both tables live in the
    installation's Glue database)."""

    engine = "athena"

    def __init__(self, athena_store, progress: Progress | None = None):
        self._athena = athena_store
        self._progress = progress

    def match(self, first: date, last: date, installation: str) -> list[dict]:
        sql, params = match_query(first, last, installation)
        return _rows(self._athena.execute(sql, params, self._progress))

    def untagged(self, first: date, last: date) -> int:
        sql, params = untagged_query(first, last)
        (row,) = self._athena.execute(sql, params, self._progress) or [(0,)]
        return int(row[0] or 0)


# ---- copies for the local engine


def _wide_days(first: date, last: date) -> list[date]:
    return list(iter_days(first - timedelta(days=2), last + timedelta(days=2)))


def copy_usage_log(s3, bucket: str, prefix: str, first: date, last: date, target: Path) -> int:
    """The usage log's ``dt=`` objects around the range, as the local engine reads them."""
    from .logsink import partition_prefix

    copied = 0
    for day in _wide_days(first, last):
        key_prefix = partition_prefix(prefix, day.isoformat())
        folder = target / f"{LOG_PARTITION_KEY}={day.isoformat()}"
        copied += _copy_objects(s3, bucket, key_prefix, folder, flatten=True)
    return copied


def copy_invocation_log_s3(
    s3, bucket: str, prefix: str, account_id: str, region: str, first: date, last: date,
    target: Path,
) -> int:  # fmt: skip
    """Bedrock's objects of the days around the range, keeping their ``YYYY/MM/DD/HH/``."""
    base = s3_prefix(prefix, account_id, region)
    copied = 0
    for day in _wide_days(first, last):
        key_prefix = base + day_folder(day) + "/"
        copied += _copy_objects(s3, bucket, key_prefix, target / day_folder(day), flatten=False)
    return copied


def _copy_objects(s3, bucket: str, key_prefix: str, folder: Path, *, flatten: bool) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    copied = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix):
            for obj in page.get("Contents", []):
                rest = obj["Key"][len(key_prefix) :]
                if not rest:
                    continue
                path = folder / (rest.replace("/", "_") if flatten else rest)
                path.parent.mkdir(parents=True, exist_ok=True)
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
                with open(path, "wb") as handle:
                    shutil.copyfileobj(body, handle)
                copied += 1
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"cannot read s3://{bucket}/{key_prefix}: {exc}") from None
    return copied


def copy_invocation_log_cloudwatch(logs, group: str, first: date, last: date, target: Path) -> int:
    """The events of ``aws/bedrock/modelinvocations`` around the range, one JSON line
    each, filed by their own timestamp's hour as Bedrock files its S3 objects."""
    from botocore.exceptions import BotoCoreError, ClientError

    days = _wide_days(first, last)
    start = datetime.combine(days[0], datetime.min.time(), UTC)
    end = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), UTC)
    files: dict[str, list[str]] = {}
    kwargs = {
        "logGroupName": group,
        "logStreamNames": [CLOUDWATCH_STREAM],
        "startTime": int(start.timestamp() * 1000),
        "endTime": int(end.timestamp() * 1000) - 1,
    }
    try:
        for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
            for event in page.get("events", []):
                moment = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
                files.setdefault(moment.strftime("%Y/%m/%d/%H"), []).append(event["message"])
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"cannot read CloudWatch Logs group {group}: {exc}") from None
    for folder, lines in files.items():
        path = target / folder / "cloudwatch.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sum(len(v) for v in files.values())


class CopiedLogs:
    """A temporary folder holding both copies; ``matcher`` runs the SQL over them."""

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="bedrock-billing-invlogs-")
        root = Path(self._tmp.name)
        self.usage_root, self.invocation_root = root / "usage", root / "invocations"
        self.usage_root.mkdir()
        self.invocation_root.mkdir()
        self.matcher = LocalInvocationMatcher(self.usage_root, self.invocation_root)

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> CopiedLogs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- repair: the booked line goes into the partition of its own day


def write_repaired_lines(s3, bucket: str, prefix: str, lines: Sequence[dict]) -> list[str]:
    """Write repaired usage lines, one object per day, under ``dt=`` of the line's own day
    (not of its arrival: a period's queries read a day around it, no further)."""
    import uuid

    from .logsink import partition_prefix, serialize_line

    by_day: dict[str, list[str]] = {}
    for line in lines:
        by_day.setdefault(str(line["timestamp"])[:10], []).append(serialize_line(line))
    keys = []
    for day, texts in sorted(by_day.items()):
        key = partition_prefix(prefix, day) + f"repaired-{uuid.uuid4().hex}.jsonl"
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=("\n".join(texts) + "\n").encode(),
            ContentType="application/x-ndjson",
        )
        keys.append(key)
    return keys


def local_lines(folder: Path, lines: Sequence[dict]) -> None:
    """The same, into a local usage-log folder (tests)."""
    from .logsink import serialize_line

    for line in lines:
        day = str(line["timestamp"])[:10]
        target = folder / f"{LOG_PARTITION_KEY}={day}"
        target.mkdir(parents=True, exist_ok=True)
        with open(target / "repaired.jsonl", "a", encoding="utf-8") as handle:
            handle.write(serialize_line(line) + "\n")


__all__ = [
    "AthenaInvocationMatcher",
    "CopiedLogs",
    "LocalInvocationMatcher",
    "copy_invocation_log_cloudwatch",
    "copy_invocation_log_s3",
    "copy_usage_log",
    "write_repaired_lines",
]
