"""Where usage is read from, for a resolved ``Settings``: the counters table, and the log
(Athena, or the local engine where the sandbox marked the bucket).

The log's bucket, database and workgroup come from the config file (``deploy`` writes
them); without it they are derived from the stage the way a deployment names them, so a
cron host or a shell pointed at the sandbox needs no configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..awsclient import endpoint_for
from ..core.errors import AwsError, InvalidInput
from ..core.schema import (
    LOG_PREFIX,
    athena_workgroup_name,
    glue_database_name,
    log_bucket_name,
)
from ..core.timeutil import Clock, parse_date, resolve_date_range, system_clock
from ..stores.logsink import normalise_prefix
from ..stores.usage_counters import CounterStore, scan_customer_ids
from ..stores.usagelog import ENGINES, LogConfig, UsageLogStore, sandbox_marker
from . import usage_reports as usage_service
from .customers import customer_names, resolve_customer_id

SOURCES = ("dynamodb", "athena")


def log_config(settings, *, engine: str | None = None) -> LogConfig:
    bucket = settings.log_bucket
    if not bucket:
        sts = settings.client("sts")
        account = sts.get_caller_identity()["Account"]
        bucket = log_bucket_name(
            settings.stage, settings.table_prefix, account, settings.session().region_name
        )
    return LogConfig(
        bucket=bucket,
        prefix=settings.log_prefix or LOG_PREFIX,
        database=settings.athena_database
        or glue_database_name(settings.stage, settings.table_prefix),
        workgroup=settings.athena_workgroup
        or athena_workgroup_name(settings.stage, settings.table_prefix),
        results_location=settings.athena_output_location,
        engine=engine,
    )


def counter_store(settings) -> CounterStore:
    return CounterStore(settings.client("dynamodb"), settings.tables.usage)


def log_store(settings):
    session = settings.session()
    return open_log_store(
        session,
        log_config(settings),
        endpoint_url=endpoint_for(settings, "s3"),
        region=session.region_name,
        athena_endpoint_url=endpoint_for(settings, "athena"),
    )


def open_log_store(
    session,
    config: LogConfig,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    athena_endpoint_url: str | None = None,
) -> UsageLogStore:
    """The log store for ``config``: local engine where the sandbox marked the bucket (or
    the caller forces an engine). Nothing is guessed from endpoints."""
    engine = config.engine
    if engine is not None and engine not in ENGINES:
        raise InvalidInput(f"invalid log engine {engine!r}: expected athena or local")
    s3 = None
    if engine is None or engine == "local":
        s3 = session.client("s3", endpoint_url=endpoint_url, region_name=region)
    if engine is None:
        marker = sandbox_marker(s3, config.bucket)
        engine = "local" if marker else "athena"
    if engine == "local":
        from ..stores.localsql import LocalLogStore

        return LocalLogStore.from_s3(s3, config.bucket, normalise_prefix(config.prefix))
    from ..stores.athena import AthenaLogStore

    return AthenaLogStore(
        session=session,
        database=config.database,
        workgroup=config.workgroup,
        results_location=config.results_location,
        region=region,
        endpoint_url=athena_endpoint_url or endpoint_url,
    )


def _targets(settings, customer_id: str | None, all_customers: bool) -> list[str]:
    if bool(customer_id) == bool(all_customers):
        raise InvalidInput("give --customer-id ID or --all")
    if customer_id:
        return [resolve_customer_id(settings, customer_id)]
    return scan_customer_ids(settings.client("dynamodb"), settings.tables.customers)


def report_usage(
    settings,
    *,
    customer_id: str | None = None,
    all_customers: bool = False,
    start_date: str | None = None,
    end_date: str | None = None,
    period: str | None = None,
    group_by: str = "day,model",
    source: str = "dynamodb",
    progress: Callable[[int, int | None, str], None] | None = None,
    clock: Clock = system_clock,
) -> Any:
    """The ``usage`` command's report (services.usage_reports.UsageReport)."""
    if source not in SOURCES:
        raise InvalidInput(f"invalid --source {source!r}: choose dynamodb or athena")
    first, last = resolve_date_range(start_date, end_date, period, clock)
    ids = _targets(settings, customer_id, all_customers)
    store = counter_store(settings) if source == "dynamodb" else log_store(settings)
    report = usage_service.usage_report(
        store, ids, first, last,
        all_customers=all_customers, group_by=group_by, clock=clock, progress=progress,
    )  # fmt: skip
    report.names = customer_names(settings, report.customer_totals)
    return report


def reconcile_usage(
    settings,
    *,
    customer_id: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    period: str | None = None,
    progress=None,
    clock: Clock = system_clock,
):
    """Counters against the log for one customer or everyone (services.usage_reports.reconcile)."""
    first, last = resolve_date_range(start_date, end_date, period, clock)
    ids = _targets(settings, customer_id, not customer_id)
    return usage_service.reconcile(
        counter_store(settings), log_store(settings), ids, first, last,
        all_customers=not customer_id, clock=clock, progress=progress,
    )  # fmt: skip


def repair_usage(
    settings,
    *,
    day: str,
    confirm,
    customer_id: str | None = None,
    progress=None,
    clock: Clock = system_clock,
):
    """Rebuild one past day's counters from the log, after ``confirm(plan)``."""
    ids = _targets(settings, customer_id, not customer_id)
    return usage_service.repair_day(
        counter_store(settings), log_store(settings), ids, parse_date(day, "repair day"),
        confirm=confirm, all_customers=not customer_id, clock=clock, progress=progress,
    )  # fmt: skip


# ---- against Bedrock's model invocation logs (docs/reconcile.md)

INVOCATION_SOURCES = ("s3", "cloudwatch")


def _logging_config(settings) -> dict:
    """Bedrock's model invocation logging configuration of the region ({} when off or
    unreadable: the defaults the deploy uses then apply)."""
    try:
        bedrock = settings.client("bedrock")
        return bedrock.get_model_invocation_logging_configuration().get("loggingConfig") or {}
    except Exception:  # no permission, or an endpoint without the API: use the defaults
        return {}


def _installation_matcher(settings, copies, source, log_group, first, last, cfg):
    """The matcher for ``source``: Athena over the Glue tables in a deployment; the local
    engine over copies (the sandbox's bucket, or CloudWatch Logs, which Athena cannot read)."""
    from ..core.invocationlog import INVOCATION_LOG_PREFIX
    from ..stores import invocationlogs

    session = settings.session()
    s3 = session.client("s3", endpoint_url=endpoint_for(settings, "s3"),
                        region_name=session.region_name)  # fmt: skip
    marker = sandbox_marker(s3, cfg.bucket)
    if source == "s3" and not marker:  # a deployment: both tables in its Glue database
        return invocationlogs.AthenaInvocationMatcher(log_store(settings))
    bedrock_logging = _logging_config(settings)
    invocationlogs.copy_usage_log(
        s3, cfg.bucket, normalise_prefix(cfg.prefix), first, last, copies.usage_root
    )
    if source == "cloudwatch":
        group = log_group or (bedrock_logging.get("cloudWatchConfig") or {}).get("logGroupName")
        if not group:
            raise InvalidInput(
                "no CloudWatch Logs group: Bedrock's logging sends none here; give --log-group"
            )
        logs = session.client("logs", endpoint_url=endpoint_for(settings, "logs"),
                              region_name=session.region_name)  # fmt: skip
        invocationlogs.copy_invocation_log_cloudwatch(
            logs, group, first, last, copies.invocation_root
        )
    else:
        s3_config = bedrock_logging.get("s3Config") or {}
        bucket = s3_config.get("bucketName") or cfg.bucket
        prefix = s3_config.get("keyPrefix", INVOCATION_LOG_PREFIX)
        account = settings.client("sts").get_caller_identity()["Account"]
        invocationlogs.copy_invocation_log_s3(
            s3, bucket, prefix, account, session.region_name, first, last,
            copies.invocation_root,
        )  # fmt: skip
    return copies.matcher


def reconcile_invocation_logs(
    settings,
    *,
    start_date: str | None = None,
    end_date: str | None = None,
    period: str | None = None,
    source: str = "s3",
    log_group: str | None = None,
    repair: bool = False,
    confirm=None,
    clock: Clock = system_clock,
):
    """``reconcile --against invocation-logs``: the report, and with ``repair`` the
    booking of what Bedrock served and the proxy did not record (after ``confirm``).
    Returns (report, repair result or None)."""
    from ..stores.invocationlogs import CopiedLogs, write_repaired_lines

    if source not in INVOCATION_SOURCES:
        raise InvalidInput(f"invalid --source {source!r}: choose s3 or cloudwatch")
    first, last = resolve_date_range(start_date, end_date, period, clock)
    cfg = log_config(settings)
    with CopiedLogs() as copies:
        matcher = _installation_matcher(settings, copies, source, log_group, first, last, cfg)
        try:
            report = usage_service.reconcile_invocations(
                matcher, first, last, settings.tables.usage, source=source, clock=clock
            )
        except AwsError as exc:
            if matcher.engine == "athena" and "invocation_log" in exc.message:
                raise AwsError(
                    f"{exc.message} (the Athena table comes with "
                    "`deploy --invocation-logs metadata`)"
                ) from None
            raise
    result = None
    if repair:
        session = settings.session()
        s3 = session.client("s3", endpoint_url=endpoint_for(settings, "s3"),
                            region_name=session.region_name)  # fmt: skip

        def write(lines):
            return write_repaired_lines(s3, cfg.bucket, normalise_prefix(cfg.prefix), lines)

        result = usage_service.repair_unrecorded(
            report, counter_store(settings), write, confirm=confirm or (lambda _: True),
            clock=clock,
        )  # fmt: skip
    return report, result
