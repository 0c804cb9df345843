"""Usage reports and reconciliation: the use cases behind ``usage`` and ``reconcile``.

Both read :class:`UsageRow` lists per customer from a source (the DynamoDB counters or the
usage log through Athena or the local engine), do the arithmetic in core/usage.py, and
return plain dataclasses whose ``to_dict()`` is the documented JSON (docs/usage.md).
Stores are injected, so the CLI, a script and the tests call the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from ..core.admissions import AbandonedRequest
from ..core.customers import validate_customer_id
from ..core.errors import EXIT_DIFFERENCES, EXIT_NOT_FINAL, EXIT_OK, Conflict, InvalidInput
from ..core.timeutil import Clock, check_date_range, end_of_day, iso_z, system_clock
from ..core.usage import (
    COUNTERS,
    Difference,
    GroupedUsage,
    UsageRow,
    add_counts,
    compare_rows,
    daily_series,
    group_rows,
    merge_rows,
    parse_group_by,
    totals,
    with_total_tokens,
    zero_counts,
)
from ..stores.usage_counters import CounterStore
from ..stores.usagelog import Progress, UsageLogStore

REPAIR_SETTLE = timedelta(hours=1)
"""A day can be repaired once it ended this long ago: late lines and writes have landed."""


def _check_range(first: date, last: date) -> None:
    check_date_range(first, last)  # also bounds the range (MAX_RANGE_DAYS)


def _ids(customer_ids: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in customer_ids:
        seen[validate_customer_id(value)] = None
    return list(seen)


def _read(source, first, last, ids, all_customers, progress) -> dict[str, list[UsageRow]]:
    """Rows per customer. A log source answers ``--all`` with one query for everyone."""
    if all_customers and source.engine != "dynamodb":
        data = source.read_usage(first, last, None, progress)
    else:
        data = source.read_usage(first, last, ids, progress)
    for customer_id in ids:
        data.setdefault(customer_id, [])
    return {k: merge_rows(v) for k, v in sorted(data.items())}


def _today_warning(last: date, clock: Clock) -> list[str]:
    if clock().date() <= last:
        return ["the range includes today: counts are still moving"]
    return []


# ---- usage


@dataclass
class UsageReport:
    source: str  # dynamodb | athena | local
    start_date: date
    end_date: date
    group_by: str
    generated_at: datetime
    rows: list[GroupedUsage]
    customer_totals: dict[str, dict[str, int]]
    totals: dict[str, int]
    daily: list[tuple[date, dict[str, int]]]
    warnings: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # customer id -> name, where known

    def csv_rows(self) -> list[dict]:
        return [
            {**row.to_dict(), "customer_name": self.names.get(row.customer_id)}
            for row in self.rows
        ]

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "group_by": self.group_by,
            "generated_at": iso_z(self.generated_at),
            "customer_count": len(self.customer_totals),
            "rows": self.csv_rows(),
            "customers": [
                {"customer_id": cid, "customer_name": self.names.get(cid),
                 **with_total_tokens(counts)}
                for cid, counts in self.customer_totals.items()
            ],
            "daily": [{"day": d.isoformat(), **with_total_tokens(c)} for d, c in self.daily],
            "totals": with_total_tokens(self.totals),
            "warnings": list(self.warnings),
        }


def usage_report(
    source: CounterStore | UsageLogStore,
    customer_ids: Sequence[str],
    first: date,
    last: date,
    *,
    all_customers: bool = False,
    group_by: str = "day,model",
    clock: Clock = system_clock,
    progress: Progress | None = None,
) -> UsageReport:
    """Usage of ``customer_ids`` from ``first`` to ``last`` (inclusive, UTC).

    ``all_customers``: the ids are every customer (from the customers table); a log source
    then reads everyone in one query, and customers found only in the log are included.
    Every id is validated as a UUID before any query.
    """
    _check_range(first, last)
    group_by = parse_group_by(group_by)
    ids = _ids(customer_ids)
    if not ids and not all_customers:
        raise InvalidInput("give a customer id, or --all")
    data = _read(source, first, last, ids, all_customers, progress)
    rows = [g for cid, r in data.items() for g in group_rows(cid, r, group_by)]
    everything = [row for r in data.values() for row in r]
    return UsageReport(
        source=source.engine,
        start_date=first,
        end_date=last,
        group_by=group_by,
        generated_at=clock(),
        rows=rows,
        customer_totals={cid: totals(r) for cid, r in data.items()},
        totals=totals(everything),
        daily=daily_series(everything, first, last),
        warnings=_today_warning(last, clock),
    )


# ---- reconcile


@dataclass
class ReconcileReport:
    start_date: date
    end_date: date
    log_source: str  # athena | local
    generated_at: datetime
    customers_checked: int
    differences: list[Difference]
    counters_totals: dict[str, int]
    log_totals: dict[str, int]
    log_rows: dict[str, list[UsageRow]] = field(default_factory=dict, repr=False)
    warnings: list[str] = field(default_factory=list)
    # Admitted requests with no outcome line: AWS may have billed them (core/admissions.py)
    abandoned: list[AbandonedRequest] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_DIFFERENCES if self.differences or self.abandoned else EXIT_OK

    def csv_rows(self) -> list[dict]:
        return [d.to_dict() for d in self.differences]

    def to_dict(self) -> dict:
        return {
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "log_source": self.log_source,
            "generated_at": iso_z(self.generated_at),
            "customers_checked": self.customers_checked,
            "rows": self.csv_rows(),
            "abandoned": [a.to_dict() for a in self.abandoned],
            "totals": {
                "differences": len(self.differences),
                "abandoned": len(self.abandoned),
                "counters": with_total_tokens(self.counters_totals),
                "log": with_total_tokens(self.log_totals),
            },
            "warnings": list(self.warnings),
        }


def reconcile(
    counters: CounterStore,
    log: UsageLogStore,
    customer_ids: Sequence[str],
    first: date,
    last: date,
    *,
    all_customers: bool = True,
    clock: Clock = system_clock,
    progress: Progress | None = None,
) -> ReconcileReport:
    """Compare the counters with the log per customer, day and model, counter by counter.

    With ``all_customers`` the log is read in one query and customers that appear only in
    the log are checked too (their counters are read as well).
    """
    _check_range(first, last)
    ids = _ids(customer_ids)
    if not ids and not all_customers:
        raise InvalidInput("give a customer id, or --all")
    log_rows = _read(log, first, last, ids, all_customers, progress)
    everyone = sorted(set(ids) | set(log_rows))
    counter_rows = _read(counters, first, last, everyone, False, progress)
    diffs = [d for cid in everyone for d in compare_rows(cid, counter_rows[cid], log_rows[cid])]
    counters_totals, log_totals = zero_counts(), zero_counts()
    for cid in everyone:
        for row in counter_rows[cid]:
            add_counts(counters_totals, row)
        for row in log_rows.get(cid, []):
            add_counts(log_totals, row)
    warnings = _today_warning(last, clock)
    if warnings:
        warnings = [
            "the range includes today: lines still in transit, and requests still running, "
            "show as differences or abandoned requests"
        ]
    read_abandoned = getattr(log, "read_abandoned", None)  # a log source that has the lines
    abandoned = []
    if read_abandoned is not None:
        abandoned = read_abandoned(first, last, None if all_customers else ids, progress)
        if not all_customers:
            abandoned = [a for a in abandoned if a.customer_id in set(ids)]
    return ReconcileReport(
        start_date=first,
        end_date=last,
        log_source=log.engine,
        generated_at=clock(),
        customers_checked=len(everyone),
        differences=diffs,
        counters_totals=counters_totals,
        log_totals=log_totals,
        log_rows=log_rows,
        warnings=warnings,
        abandoned=abandoned,
    )


# ---- repair


@dataclass
class RepairPlan:
    """What ``reconcile --repair`` would write: the day, and the differences it removes."""

    day: date
    differences: list[Difference]
    log_rows: dict[str, list[UsageRow]]

    @property
    def customer_ids(self) -> list[str]:
        return sorted({d.customer_id for d in self.differences})

    def to_dict(self) -> dict:
        return {
            "day": self.day.isoformat(),
            "customers": self.customer_ids,
            "rows": [d.to_dict() for d in self.differences],
        }


@dataclass
class RepairResult:
    day: date
    applied: bool
    customers_repaired: list[str]
    writes: int
    plan: RepairPlan

    def to_dict(self) -> dict:
        return {
            "day": self.day.isoformat(),
            "applied": self.applied,
            "customers_repaired": self.customers_repaired,
            "writes": self.writes,
            "rows": self.plan.to_dict()["rows"],
        }


def plan_repair(
    counters: CounterStore,
    log: UsageLogStore,
    customer_ids: Sequence[str],
    day: date,
    *,
    all_customers: bool = True,
    clock: Clock = system_clock,
    progress: Progress | None = None,
) -> RepairPlan:
    """The differences of one past day, and the log rows that would replace the counters."""
    if clock() < end_of_day(day) + REPAIR_SETTLE:
        raise Conflict(
            f"{day} is not a past day yet: a day can be repaired from "
            f"{iso_z(end_of_day(day) + REPAIR_SETTLE + timedelta(microseconds=1))}"
        )
    report = reconcile(
        counters, log, customer_ids, day, day,
        all_customers=all_customers, clock=clock, progress=progress,
    )  # fmt: skip
    return RepairPlan(day=day, differences=report.differences, log_rows=report.log_rows)


def repair_day(
    counters: CounterStore,
    log: UsageLogStore,
    customer_ids: Sequence[str],
    day: date,
    *,
    confirm: Callable[[RepairPlan], bool],
    all_customers: bool = True,
    clock: Clock = system_clock,
    progress: Progress | None = None,
) -> RepairResult:
    """Rebuild one past day's DAY# items from the log, for customers that differ.

    ``confirm`` sees the plan and returns True to write; the writes SET the counters to the
    log's values (running it twice changes nothing the second time).
    """
    plan = plan_repair(
        counters, log, customer_ids, day,
        all_customers=all_customers, clock=clock, progress=progress,
    )  # fmt: skip
    if not plan.differences or not confirm(plan):
        return RepairResult(day, False, [], 0, plan)
    writes = 0
    for customer_id in plan.customer_ids:
        writes += counters.replace_day(
            customer_id, day, plan.log_rows.get(customer_id, []), clock=clock
        )
    return RepairResult(day, True, plan.customer_ids, writes, plan)


# ---- reconcile against Bedrock's model invocation logs (docs/reconcile.md)

TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
)
KINDS = ("unrecorded", "not_in_aws_log", "tokens")
REPAIR_NOTE = (
    "booked by reconcile --against invocation-logs --repair at {at}: Bedrock served it "
    "(request {rid}), the proxy recorded no billed line"
)


def _tokens(row: dict, side: str) -> dict[str, int]:
    return {name: int(row.get(f"{side}_{name}") or 0) for name in TOKEN_FIELDS}


@dataclass
class InvocationDifference:
    """One request that differs, as the match query returns it."""

    customer_id: str | None
    day: date
    model: str
    kind: str  # unrecorded | not_in_aws_log | tokens
    bedrock_request_id: str
    request_id: str | None
    aws_model_id: str | None
    aws_timestamp: str | None
    aws_operation: str | None
    proxy: dict[str, int]
    aws: dict[str, int]
    admitted: bool = False  # the proxy's admission line exists: it took it and lost it

    @classmethod
    def from_row(cls, row: dict) -> InvocationDifference:
        from ..core.models import normalise_model_id

        model = str(row.get("model") or "unknown")
        try:
            model = normalise_model_id(model).foundation_model
        except InvalidInput:
            pass
        return cls(
            customer_id=row.get("customer_id"),
            day=date.fromisoformat(str(row["day"])),
            model=model,
            kind=str(row["kind"]),
            bedrock_request_id=str(row["bedrock_request_id"]),
            request_id=row.get("request_id"),
            aws_model_id=row.get("aws_model_id"),
            aws_timestamp=row.get("aws_timestamp"),
            aws_operation=row.get("aws_operation"),
            proxy=_tokens(row, "proxy"),
            aws=_tokens(row, "aws"),
            admitted=int(row.get("admitted") or 0) == 1,
        )

    def to_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "day": self.day.isoformat(),
            "model": self.model,
            "kind": self.kind,
            "bedrock_request_id": self.bedrock_request_id,
            "request_id": self.request_id,
            "aws_timestamp": self.aws_timestamp,
            "admitted": self.admitted,
            **{f"proxy_{k}": v for k, v in self.proxy.items()},
            **{f"aws_{k}": v for k, v in self.aws.items()},
        }


@dataclass
class InvocationReconcileReport:
    start_date: date
    end_date: date
    source: str  # s3 | cloudwatch
    engine: str  # athena | local
    generated_at: datetime
    differences: list[InvocationDifference]
    untagged: int = 0  # records of other callers in the account and region
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_DIFFERENCES if self.differences else EXIT_OK

    def rows(self) -> list[dict]:
        """Per customer, day, model and kind: requests and tokens on each side."""
        groups: dict[tuple, dict] = {}
        for d in self.differences:
            key = (d.customer_id or "", d.day, d.model, d.kind)
            row = groups.setdefault(key, {
                "customer_id": d.customer_id, "day": d.day.isoformat(), "model": d.model,
                "kind": d.kind, "requests": 0,
                **{f"proxy_{k}": 0 for k in TOKEN_FIELDS}, **{f"aws_{k}": 0 for k in TOKEN_FIELDS},
            })  # fmt: skip
            row["requests"] += 1
            for k in TOKEN_FIELDS:
                row[f"proxy_{k}"] += d.proxy[k]
                row[f"aws_{k}"] += d.aws[k]
        out = []
        for key in sorted(groups):
            row = groups[key]
            row["proxy_tokens"] = sum(row[f"proxy_{k}"] for k in TOKEN_FIELDS)
            row["aws_tokens"] = sum(row[f"aws_{k}"] for k in TOKEN_FIELDS)
            row["token_difference"] = row["aws_tokens"] - row["proxy_tokens"]
            out.append(row)
        return out

    def csv_rows(self) -> list[dict]:
        return self.rows()

    def to_dict(self) -> dict:
        counts = {kind: 0 for kind in KINDS}
        for d in self.differences:
            counts[d.kind] = counts.get(d.kind, 0) + 1
        return {
            "against": "invocation-logs",
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "source": self.source,
            "engine": self.engine,
            "generated_at": iso_z(self.generated_at),
            "rows": self.rows(),
            "requests": [d.to_dict() for d in self.differences],
            "totals": {
                "differences": len(self.differences),
                **counts,
                "untagged_invocations": self.untagged,
            },
            "warnings": list(self.warnings),
        }


def reconcile_invocations(
    matcher,
    first: date,
    last: date,
    installation: str,
    *,
    source: str = "s3",
    clock: Clock = system_clock,
) -> InvocationReconcileReport:
    """Bedrock's invocation log against the proxy's log, request by request (matched on
    Bedrock's request id); ``installation`` is the usage table's name the proxy tags its
    calls with. ``matcher`` runs core/invocationlog.py's query (stores/invocationlogs.py)."""
    _check_range(first, last)
    diffs = [InvocationDifference.from_row(r) for r in matcher.match(first, last, installation)]
    warnings = []
    if clock().date() <= last:
        warnings.append(
            "the range includes today: Bedrock delivers its logs minutes after a call, so "
            "the newest calls can show as differences"
        )
    unattributed = sum(1 for d in diffs if d.kind == "unrecorded" and not d.customer_id)
    if unattributed:
        warnings.append(f"{unattributed} served request(s) carry no customer tag")
    untagged = matcher.untagged(first, last)
    if untagged and any(d.kind == "not_in_aws_log" for d in diffs):
        warnings.append(
            "Bedrock logged calls without this installation's tag while proxy requests are "
            "missing from its log: a proxy whose botocore predates request metadata sends "
            "no tag (docs/reconcile.md)"
        )
    return InvocationReconcileReport(
        start_date=first,
        end_date=last,
        source=source,
        engine=matcher.engine,
        generated_at=clock(),
        differences=diffs,
        untagged=untagged,
        warnings=warnings,
    )


@dataclass
class InvocationRepairResult:
    applied: bool
    booked: list[InvocationDifference]  # newly booked in the counters and the log
    already_booked: int  # counted before (their marker exists): only the line written
    skipped: list[InvocationDifference]  # differences --repair does not book
    lines: int = 0

    def to_dict(self) -> dict:
        return {
            "applied": self.applied,
            "booked": len(self.booked),
            "already_booked": self.already_booked,
            "log_lines_written": self.lines,
            "skipped": len(self.skipped),
            "rows": [d.to_dict() for d in self.booked],
        }


def repaired_line(diff: InvocationDifference, at: datetime) -> dict:
    """The usage line of a request Bedrock served and the proxy did not record, flagged."""
    operation = diff.aws_operation or ""
    tokens = dict(diff.aws)
    return {
        "timestamp": diff.aws_timestamp or f"{diff.day.isoformat()}T00:00:00Z",
        "event_type": "bedrock_invoke",
        "request_id": diff.request_id or f"repair-{diff.bedrock_request_id}",
        "customer_id": diff.customer_id,
        "model_id": diff.aws_model_id or diff.model,
        "foundation_model": diff.model,
        "api": "converse" if operation.startswith("Converse") else "invoke",
        "streamed": operation.endswith("Stream"),
        "status": 200,
        "error_code": None,
        **tokens,
        "token_count": sum(tokens.values()),
        "usage_estimated": False,
        "bedrock_request_id": diff.bedrock_request_id,
        "repaired": True,
        "note": REPAIR_NOTE.format(at=iso_z(at), rid=diff.bedrock_request_id),
    }


def repair_unrecorded(
    report: InvocationReconcileReport,
    counters: CounterStore,
    write_lines: Callable[[list[dict]], object],
    *,
    confirm: Callable[[list[InvocationDifference]], bool],
    clock: Clock = system_clock,
) -> InvocationRepairResult:
    """Book each request Bedrock served and the proxy did not record to its customer (the
    request-metadata tag): the counters first, once per Bedrock request id (a marker in the
    same transaction), then a usage line flagged ``repaired`` with a note, in the
    partition of its own day. Running it again books nothing: the lines are there, so the
    next reconcile is clean; a run cut between the two steps writes only the line."""
    todo = [d for d in report.differences if d.kind == "unrecorded" and d.customer_id]
    skipped = [d for d in report.differences if d not in todo]
    if not todo or not confirm(todo):
        return InvocationRepairResult(False, [], 0, skipped)
    now = clock()
    booked, again = [], 0
    for diff in todo:
        counts = {"requests": 1, **diff.aws}
        if counters.book_repaired(
            diff.customer_id, diff.day, diff.model, counts, diff.bedrock_request_id, clock=clock
        ):
            booked.append(diff)
        else:
            again += 1
    lines = [repaired_line(d, now) for d in todo]
    write_lines(lines)
    return InvocationRepairResult(True, booked, again, skipped, len(lines))


# ---- reconcile against the AWS bill (CUR 2.0)


@dataclass
class CurReconcileReport:
    """``reconcile --against cur``: the proxy's usage and the price book against AWS's bill."""

    period: str
    log_source: str
    cur_source: str
    generated_at: datetime
    check: object  # core.pricing.billcheck.BillCheck
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if not self.check.final:
            return EXIT_NOT_FINAL
        return EXIT_DIFFERENCES if self.check.findings else EXIT_OK

    def csv_rows(self) -> list[dict]:
        return [line.to_dict() for line in self.check.lines]

    def to_dict(self) -> dict:
        return {
            "period": self.period,
            "against": "cur",
            "log_source": self.log_source,
            "cur_source": self.cur_source,
            "generated_at": iso_z(self.generated_at),
            "final": self.check.final,
            "rows": self.csv_rows(),
            "differences": [f.to_dict() for f in self.check.findings],
            "totals": self.check.totals(),
            "warnings": list(self.warnings),
        }


NOT_FINAL_WARNING = (
    "AWS has not closed the bill for {period}: Data Exports refresh the CUR at least once a "
    "day and a month's figures move until the bill is final ({open} of {total} Bedrock line "
    "item(s) without an invoice id); exit code 6 until then"
)


def reconcile_against_cur(
    log, cur, book, period, *, tolerance=None, clock: Clock = system_clock, progress=None
) -> CurReconcileReport:
    """Read the period's usage by usage type from the log and AWS's Bedrock line items from
    the CUR, and hold them against each other and the price book (core/pricing/billcheck)."""
    from ..core.billedusage import USAGE_BY_TYPE_COLUMNS, usage_by_type_query
    from ..core.pricing.billcheck import DEFAULT_TOLERANCE, check_bill

    sql, params = usage_by_type_query(period.first_day, period.last_day)
    proxy_rows = [
        dict(zip(USAGE_BY_TYPE_COLUMNS, record, strict=True))
        for record in log.query_range(period.first_day, period.last_day, sql, params, progress)
    ]
    cur_rows = cur.read_period(period, progress)
    check = check_bill(
        book, period, proxy_rows, cur_rows,
        tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
    )  # fmt: skip
    warnings = []
    if not check.final:
        if not check.line_items:
            warnings.append(
                f"the CUR has no Bedrock line items for {period} yet: AWS delivers them 24 to "
                "48 hours after use, and Data Exports refresh at least once a day"
            )
        else:
            warnings.append(NOT_FINAL_WARNING.format(
                period=period, open=check.open_line_items, total=check.line_items))  # fmt: skip
    return CurReconcileReport(
        period=str(period),
        log_source=log.engine,
        cur_source=cur.engine,
        generated_at=clock(),
        check=check,
        warnings=warnings,
    )


__all__ = [
    "CurReconcileReport",
    "reconcile_against_cur",
    "COUNTERS",
    "InvocationReconcileReport",
    "InvocationRepairResult",
    "reconcile_invocations",
    "repair_unrecorded",
    "ReconcileReport",
    "RepairPlan",
    "RepairResult",
    "UsageReport",
    "plan_repair",
    "reconcile",
    "repair_day",
    "usage_report",
]
