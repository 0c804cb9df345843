"""The usage log in Athena, through pyathena, with every user value as a query parameter.

The SQL text is a constant from core/logschema.py with ``?`` markers, sent with
``paramstyle="qmark"``: pyathena passes it untouched and the values go to Athena's
``ExecutionParameters``. Athena takes those verbatim as SQL literals, so each value is
turned into a literal here (:func:`trino_literal`: strings quoted, quotes doubled). No
value is ever formatted into the SQL text. Ids are validated before (services/usage_reports.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import date, datetime

from ..core.admissions import AbandonedRequest, abandoned_query
from ..core.errors import AwsError, InvalidInput
from ..core.logschema import usage_query
from ..core.usage import UsageRow
from .usagelog import Progress, rows_by_customer


def trino_literal(value) -> str:
    """A Python value as a Trino SQL literal, for Athena's execution parameters."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        raise InvalidInput("timestamps are passed as ISO strings, not datetimes")
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise InvalidInput(f"unsupported query parameter type {type(value).__name__}")


class AthenaLogStore:
    """Reads usage from the Glue ``usage_log`` table with Athena.

    ``connect`` builds the pyathena connection (tests may inject one); ``poll_interval`` is
    the seconds between status requests while a query runs, each reported to ``progress``.
    """

    engine = "athena"

    def __init__(
        self,
        *,
        session=None,
        database: str = "bedrock_billing",
        workgroup: str | None = None,
        results_location: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        poll_interval: float = 1.0,
        connect=None,
        clock=time.monotonic,
    ):
        if not workgroup and not results_location:
            raise InvalidInput(
                "Athena needs a workgroup or a query results location (s3://bucket/prefix/)"
            )
        if results_location and not results_location.startswith("s3://"):
            raise InvalidInput(f"invalid Athena results location {results_location!r}")
        self._kwargs = {
            "session": session,
            "schema_name": database,
            "work_group": workgroup,
            "s3_staging_dir": results_location,
            "region_name": region or (session.region_name if session else None),
            "poll_interval": poll_interval,
            "on_poll": self._on_poll,
        }
        if endpoint_url:
            self._kwargs["endpoint_url"] = endpoint_url
        self._connect = connect
        self._connection = None
        self._progress: Progress | None = None
        self._started = 0.0
        self._last = None
        self._clock = clock
        self.queries: list[str] = []  # query execution ids, in order

    def _conn(self):
        if self._connection is None:
            if self._connect is None:
                import pyathena

                # pyathena logs each failed call with logger.exception; with no logging set
                # up, Python's last-resort handler would print that traceback to stderr. The
                # error is raised to us and reported once; a caller that configures logging
                # still receives the records.
                logging.getLogger("pyathena").addHandler(logging.NullHandler())
                self._connect = pyathena.connect
            self._connection = self._connect(**self._kwargs)
        return self._connection

    def _on_poll(self, execution) -> None:
        self._last = execution
        if self._progress:
            state = (execution.state or "QUEUED").lower()
            scanned = execution.data_scanned_in_bytes
            extra = f", {scanned / 1e6:.1f} MB scanned" if scanned else ""
            elapsed = self._clock() - self._started
            self._progress(0, None, f"Athena query {state} ({elapsed:.0f} s{extra})")

    def execute(self, sql: str, params: Sequence, progress: Progress | None = None) -> list:
        """Run ``sql`` with ``params`` as execution parameters; rows as tuples."""
        from pyathena.error import Error as PyAthenaError

        literals = [trino_literal(p) for p in params]
        self._progress, self._started, self._last = progress, self._clock(), None
        try:
            cursor = self._conn().cursor()
            cursor.execute(sql, literals or None, paramstyle="qmark")
            if cursor.query_id:
                self.queries.append(cursor.query_id)
            return list(cursor.fetchall())
        except PyAthenaError as exc:
            raise self._error(exc) from None
        except Exception as exc:  # botocore: credentials, endpoint, network
            if type(exc).__module__.startswith("botocore"):
                raise AwsError(f"Athena request failed: {exc}") from None
            raise
        finally:
            self._progress = None

    def _error(self, exc) -> AwsError:
        last = self._last
        if last is not None and last.state == "CANCELLED":
            return AwsError(f"Athena query {last.query_id} was cancelled")
        if last is not None and last.state == "FAILED":
            reason = last.state_change_reason or "no reason given"
            return AwsError(f"Athena query {last.query_id} failed: {reason}")
        return AwsError(f"Athena query failed: {exc}")

    def query_range(self, first: date, last: date, sql: str, params: Sequence,
                    progress: Progress | None = None) -> list:  # fmt: skip
        """Another log query (core/billedusage.py); its own ``dt`` predicate prunes."""
        return self.execute(sql, params, progress)

    def read_usage(
        self,
        first: date,
        last: date,
        customer_ids: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> dict[str, list[UsageRow]]:
        ids: list[str | None] = [None] if customer_ids is None else list(customer_ids)
        out: dict[str, list[UsageRow]] = {}
        for customer_id in ids:
            sql, params = usage_query(first, last, customer_id)
            for key, rows in rows_by_customer(self.execute(sql, params, progress)).items():
                out.setdefault(key, []).extend(rows)
        return out

    def read_abandoned(
        self,
        first: date,
        last: date,
        customer_ids: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> list[AbandonedRequest]:
        """Admitted requests of ``first``..``last`` without an outcome (core/admissions.py)."""
        ids: list[str | None] = [None] if customer_ids is None else list(customer_ids)
        out: list[AbandonedRequest] = []
        for customer_id in ids:
            sql, params = abandoned_query(first, last, customer_id)
            rows = self.execute(sql, params, progress)
            out.extend(AbandonedRequest.from_record(r) for r in rows)
        return out
