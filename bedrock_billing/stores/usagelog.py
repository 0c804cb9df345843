"""The usage log as a source of :class:`UsageRow`: the interface both engines implement.

``AthenaLogStore`` (stores/athena.py) runs the queries in Athena; ``LocalLogStore``
(stores/localsql.py) runs the very same SQL text in DuckDB over the same JSON-lines files.
The services choose one (services/usage_sources.open_log_store): Athena, unless the log
bucket carries the sandbox's marker object (:func:`sandbox_marker`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from ..core.errors import AwsError
from ..core.logschema import USAGE_COLUMNS
from ..core.usage import COUNTERS, UsageRow
from .logsink import SANDBOX_MARKER_KEY

Progress = Callable[[int, int | None, str], None]
"""``progress(done, total, message)``: ``total=None`` means unknown (a spinner)."""

ENGINES = ("athena", "local")


class UsageLogStore(Protocol):
    engine: str

    def read_usage(
        self,
        first: date,
        last: date,
        customer_ids: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> dict[str, list[UsageRow]]:
        """Rows per customer for ``first``..``last`` (inclusive); ``None`` = every customer."""
        ...


def rows_by_customer(records: Iterable[Sequence]) -> dict[str, list[UsageRow]]:
    """Turn result tuples in ``USAGE_COLUMNS`` order into rows keyed by customer."""
    out: dict[str, list[UsageRow]] = {}
    for record in records:
        values = dict(zip(USAGE_COLUMNS, record, strict=True))
        row = UsageRow(
            day=date.fromisoformat(str(values["day"])),
            model=str(values["model"]),
            **{name: int(values[name] or 0) for name in COUNTERS},
        )
        if row.is_zero():  # only lines that count for nothing (a refusal not at a limit)
            continue
        out.setdefault(str(values["customer_id"]), []).append(row)
    return out


@dataclass(frozen=True)
class LogConfig:
    """Where the usage log lives and how to query it (from the config file or stack outputs).

    ``engine``: ``None`` decides from the sandbox marker; ``"athena"`` or ``"local"`` forces.
    """

    bucket: str
    prefix: str = "logs/"
    database: str = "bedrock_billing"  # the Glue database holding the usage_log table
    workgroup: str | None = None
    results_location: str | None = None  # s3://... for query results (else the workgroup's)
    engine: str | None = None


def sandbox_marker(s3_client, bucket: str) -> dict | None:
    """The sandbox marker's content, or None when the bucket has none (a deployment)."""
    from botocore.exceptions import ClientError

    try:
        body = s3_client.get_object(Bucket=bucket, Key=SANDBOX_MARKER_KEY)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound", "AccessDenied", "403"):
            return None
        raise AwsError(f"cannot read s3://{bucket}/{SANDBOX_MARKER_KEY}: {code}") from None
    try:
        marker = json.loads(body)
    except ValueError:
        return None
    return marker if isinstance(marker, dict) and marker.get("engine") == "local" else None
