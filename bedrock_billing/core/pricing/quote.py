"""``quote``: price a hypothetical month through the same code path as an invoice.

Usage comes from one model's flags or from a file of daily rows (CSV with a header, or
JSON lines); credit grants from a CSV or JSON-lines file. A bad file is an InvalidInput
naming the file and line. Reading files is the only I/O here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from ..errors import InvalidInput
from ..timeutil import Period, parse_date
from ..usage import UsageRow
from .book import PriceBook
from .credits import CreditGrant
from .invoice import InvoiceDraft, rate_period
from .overrides import CustomerOverrides

USAGE_FIELDS = ("date", "model", "requests", "input_tokens", "output_tokens")
USAGE_OPTIONAL = ("cache_read_input_tokens", "cache_write_input_tokens")
GRANT_FIELDS = ("amount", "effective")
GRANT_OPTIONAL = ("id", "priority", "expires", "remaining")


def _records(text: str, source: str, fmt: str | None) -> Iterable[tuple[int, dict]]:
    """(line number, record) pairs from CSV (header first) or JSON lines."""
    if fmt is None:
        suffix = Path(source).suffix.lower()
        if suffix == ".csv":
            fmt = "csv"
        elif suffix in (".jsonl", ".ndjson", ".json"):
            fmt = "jsonl"
        else:  # sniff: JSON lines start with an object
            fmt = "jsonl" if text.lstrip().startswith("{") else "csv"
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise InvalidInput(f"{source}: empty file; expected a header line")
        reader.fieldnames = [name.strip() for name in reader.fieldnames]
        for record in reader:
            if None in record:
                raise InvalidInput(f"{source} line {reader.line_num}: more values than columns")
            if not any((v or "").strip() for v in record.values()):
                continue
            yield reader.line_num, record
    elif fmt == "jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line, parse_float=str)  # no float: money stays exact
            except json.JSONDecodeError as err:
                raise InvalidInput(f"{source} line {number}: not JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise InvalidInput(f"{source} line {number}: expected a JSON object")
            yield number, record
    else:
        raise InvalidInput(f"unknown file format {fmt!r}: expected csv or jsonl")


def _check_fields(record: dict, required, optional, where: str) -> None:
    missing = [f for f in required if record.get(f) in (None, "")]
    if missing:
        raise InvalidInput(f"{where}: missing {missing[0]}")
    unknown = sorted(set(record) - set(required) - set(optional))
    if unknown:
        raise InvalidInput(f"{where}: unknown field {unknown[0]!r}")


def _count(value, field: str, where: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise InvalidInput(f"{where}: {field} {value!r} is not a whole number")
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(f"{where}: {field} {value!r} is not a whole number of 0 or more")
    return int(text)


def _day(value, field: str, where: str) -> date:
    try:
        return parse_date(str(value), field)
    except InvalidInput as err:
        raise InvalidInput(f"{where}: {err.message}") from None


def parse_usage_text(text: str, source: str = "usage", fmt: str | None = None) -> list[UsageRow]:
    """Daily usage rows: date, model, requests, input_tokens, output_tokens and optionally
    cache_read_input_tokens, cache_write_input_tokens."""
    rows = []
    for number, record in _records(text, source, fmt):
        where = f"{source} line {number}"
        _check_fields(record, USAGE_FIELDS, USAGE_OPTIONAL, where)
        model = str(record["model"]).strip()
        rows.append(
            UsageRow(
                day=_day(record["date"], "date", where),
                model=model,
                **{f: _count(record.get(f), f, where) for f in USAGE_FIELDS[2:] + USAGE_OPTIONAL},
            )
        )
    if not rows:
        raise InvalidInput(f"{source}: no usage rows")
    return rows


def parse_grants_text(
    text: str, source: str = "grants", fmt: str | None = None
) -> list[CreditGrant]:
    """Credit grants: amount, effective, and optionally id, priority, expires, remaining."""
    grants = []
    for number, record in _records(text, source, fmt):
        where = f"{source} line {number}"
        _check_fields(record, GRANT_FIELDS, GRANT_OPTIONAL, where)
        expires = record.get("expires")
        priority = record.get("priority")
        try:
            priority_value = int(str(priority).strip()) if priority not in (None, "") else 0
        except ValueError:
            raise InvalidInput(f"{where}: priority {priority!r} is not a whole number") from None
        try:
            grants.append(
                CreditGrant(
                    id=str(record.get("id") or f"line-{number}").strip(),
                    amount=_money(record["amount"]),
                    effective=_day(record["effective"], "effective", where),
                    expires=None if expires in (None, "") else _day(expires, "expires", where),
                    priority=priority_value,
                    remaining=(
                        None
                        if record.get("remaining") in (None, "")
                        else _money(record["remaining"])
                    ),
                )
            )
        except InvalidInput as err:
            raise InvalidInput(f"{where}: {err.message}") from None
    return grants


def _money(value):
    # JSON numbers arrive as strings (parse_float=str) or ints; both are exact.
    return str(value).strip() if not isinstance(value, str | int) else value


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"{path}: cannot be read ({err.__class__.__name__})") from None


def read_usage_file(path: str | Path, fmt: str | None = None) -> list[UsageRow]:
    return parse_usage_text(_read(path), str(path), fmt)


def read_grants_file(path: str | Path, fmt: str | None = None) -> list[CreditGrant]:
    return parse_grants_text(_read(path), str(path), fmt)


def usage_from_flags(
    period: Period | str,
    model: str,
    requests: int = 0,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_input_tokens: int = 0,
    cache_write_input_tokens: int = 0,
) -> list[UsageRow]:
    """One model's month as a single row on the period's first day."""
    period = Period.parse(period) if isinstance(period, str) else period
    counts = (
        requests,
        input_tokens,
        output_tokens,
        cache_read_input_tokens,
        cache_write_input_tokens,
    )
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
        raise InvalidInput("requests and token counts must be whole numbers of 0 or more")
    if not model or not model.strip():
        raise InvalidInput("a quote needs a model")
    return [UsageRow(period.first_day, model.strip(), *counts)]


def quote(
    book: PriceBook,
    rows: list[UsageRow],
    *,
    period: Period | str | None = None,
    plan: str | None = None,
    overrides: CustomerOverrides | None = None,
    grants: Iterable[CreditGrant] = (),
) -> InvoiceDraft:
    """Price a hypothetical month. Without ``period``, the rows' month (all in one)."""
    if period is None:
        months = sorted({Period.of(row.day) for row in rows})
        if not months:
            raise InvalidInput("a quote needs usage rows or a period")
        if len(months) > 1:
            raise InvalidInput(
                f"usage spans {months[0]} to {months[-1]}: a quote prices one month; "
                "give rows of one month"
            )
        period = months[0]
    return rate_period(book, period, rows, plan=plan, overrides=overrides, grants=grants)
