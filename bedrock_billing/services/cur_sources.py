"""Where AWS's bill is read from, for a resolved ``Settings``, and the sandbox's own bill.

``reconcile --against cur`` reads the CUR 2.0 export with Athena (``--cur-table
DATABASE.TABLE``, the table Data Exports' Athena integration creates), or with the local
engine from the export's S3 folder (``--cur-s3 s3://bucket/prefix/EXPORT/data``). In the
sandbox (the log bucket carries the sandbox marker) the default is the folder
``sandbox cur`` writes: ``s3://<log bucket>/cur/bedrock-billing-sandbox/data``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ..core.errors import InvalidInput
from ..core.timeutil import Clock, Period, system_clock
from . import usage_reports
from .pricebook import load_book
from .usage_sources import log_config, log_store

SANDBOX_CUR_PREFIX = "cur/bedrock-billing-sandbox/data"


def _split_s3(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or len(url) <= 5:
        raise InvalidInput(f"invalid --cur-s3 {url!r}: expected s3://bucket/prefix")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


def cur_store(settings, log, *, cur_table: str | None = None, cur_s3: str | None = None):
    from ..stores.cur import AthenaCurStore, LocalCurStore

    if cur_table and cur_s3:
        raise InvalidInput("give --cur-table or --cur-s3, not both")
    s3 = settings.client("s3")
    if cur_s3:
        bucket, prefix = _split_s3(cur_s3)
        return LocalCurStore(s3_client=s3, bucket=bucket, prefix=prefix)
    if cur_table:
        if log.engine != "athena":
            raise InvalidInput("--cur-table needs Athena; in the sandbox, use --cur-s3")
        from ..core.billedusage import _IDENTIFIER

        if not _IDENTIFIER.match(cur_table):
            raise InvalidInput(f"invalid --cur-table {cur_table!r}: expected DATABASE.TABLE")
        return AthenaCurStore(log, cur_table)
    if log.engine == "local":
        return LocalCurStore(s3_client=s3, bucket=log_config(settings).bucket,
                             prefix=SANDBOX_CUR_PREFIX)  # fmt: skip
    raise InvalidInput(
        "where is the AWS bill? pass --cur-table DATABASE.TABLE (the CUR 2.0 export's Athena "
        "table) or --cur-s3 s3://bucket/prefix/EXPORT/data"
    )


def _tolerance(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(f"invalid --tolerance {text!r}: expected an amount, e.g. 0.01") from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"invalid --tolerance {text!r}: expected an amount >= 0")
    return value


def reconcile_cur(
    settings,
    *,
    period: str | None,
    price_book: str | None = None,
    cur_table: str | None = None,
    cur_s3: str | None = None,
    tolerance: str | None = None,
    progress=None,
    clock: Clock = system_clock,
):
    """``reconcile --against cur --period P`` (services.usage_reports.reconcile_against_cur)."""
    if not period:
        raise InvalidInput("--against cur needs --period YYYY-MM (AWS bills by month)")
    chosen = Period.parse(period)
    amount = _tolerance(tolerance)
    book = load_book(settings, price_book).book
    log = log_store(settings)
    cur = cur_store(settings, log, cur_table=cur_table, cur_s3=cur_s3)
    return usage_reports.reconcile_against_cur(
        log, cur, book, chosen, tolerance=amount, clock=clock, progress=progress
    )


def write_sandbox_cur(
    settings,
    *,
    period: str,
    price_book: str | None = None,
    final: bool | None = None,
    clock: Clock = system_clock,
) -> dict:
    """Write the sandbox's CUR 2.0 export for ``period``: one Parquet file of Bedrock line
    items for what the proxy served, priced with the book (a Data Exports refresh replaces
    the period's files: so does this). ``final`` defaults to whether the month is over."""
    import tempfile
    from pathlib import Path

    from ..core.billedusage import USAGE_BY_TYPE_COLUMNS, usage_by_type_query
    from ..core.pricing.billcheck import line_items_for
    from ..stores.cur import period_prefix, write_cur_parquet

    chosen = Period.parse(period)
    log = log_store(settings)
    if log.engine != "local":
        raise InvalidInput("sandbox cur writes the sandbox's bill: its log bucket has no marker")
    book = load_book(settings, price_book).book
    sql, params = usage_by_type_query(chosen.first_day, chosen.last_day)
    rows = [dict(zip(USAGE_BY_TYPE_COLUMNS, r, strict=True))
            for r in log.query_range(chosen.first_day, chosen.last_day, sql, params)]  # fmt: skip
    is_final = clock() >= chosen.end if final is None else final
    region = settings.session().region_name or "us-east-1"
    items = line_items_for(book, chosen, rows, final=is_final, region=region)
    bucket = log_config(settings).bucket
    key = period_prefix(SANDBOX_CUR_PREFIX, chosen) + "part-00000.parquet"
    s3 = settings.client("s3")
    with tempfile.TemporaryDirectory(prefix="bedrock-billing-cur-") as tmp:
        path = write_cur_parquet(Path(tmp) / "cur.parquet", items)
        s3.upload_file(str(path), bucket, key)
    return {
        "period": str(chosen),
        "location": f"s3://{bucket}/{key}",
        "line_items": len(items),
        "final": is_final,
        "aws_cost": str(sum((Decimal(str(i["line_item_unblended_cost"])) for i in items),
                            Decimal(0))),  # fmt: skip
    }
