"""Bulk operations from CSV: ``create --from-csv`` and ``update-limits --from-csv``.

Each row is one independent change (a customer and its token in one transaction, or one
customer's limits in one update), so one row's failure never half-applies another. Every
row is checked before any is applied; a dry run stops there and reports each row's result.
New tokens go to a file created with mode 0600 (never to the terminal), written row by row
as each customer is created, so an interrupted import loses no token.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core import customers as rules
from ..core.errors import BillingError, InvalidInput
from ..core.timeutil import Clock, system_clock
from . import audit
from . import customers as svc

CREATE_COLUMNS = ("name", "email", "daily_limit", "plan", "expires_in")
LIMIT_COLUMNS = (
    "daily_limit",
    "monthly_token_limit",
    "requests_per_minute",
    "monthly_budget",
    "allowed_models",
    "allowed_cidrs",
    "allowed_origins",
)
MAX_ROWS = 100_000
Progress = Callable[[int, int], None]


def _read_csv(path: str, required: tuple[str, ...], allowed: tuple[str, ...]) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise InvalidInput(f"{path}: the header lacks column {missing[0]!r}")
            unknown = [c for c in header if c not in allowed]
            if unknown:
                raise InvalidInput(f"{path}: unknown column {unknown[0]!r}")
            rows = []
            for row in reader:
                rows.append({(k or "").strip(): (v or "").strip() for k, v in row.items()})
                if len(rows) > MAX_ROWS:
                    raise InvalidInput(f"{path}: more than {MAX_ROWS} rows")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise InvalidInput(f"{path}: not valid CSV ({exc})") from None
    if not rows:
        raise InvalidInput(f"{path}: no rows")
    return rows


def _check_create(row: dict) -> None:
    rules.validate_name(row.get("name", ""))
    rules.validate_email(row.get("email", ""))
    rules.parse_count_limit(row.get("daily_limit") or None, "daily limit")


def _open_tokens_file(path: str):
    """A new file only this user can read (0600), refused if it exists (never overwritten)."""
    target = Path(path)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(f"{path} already exists: give a new file for the tokens") from None
    os.fchmod(fd, 0o600)  # whatever the umask
    handle = os.fdopen(fd, "w", newline="", encoding="utf-8")
    writer = csv.writer(handle)
    writer.writerow(["row", "customer_id", "name", "email", "token"])
    handle.flush()
    return handle, writer


def _summary(results: list[dict], dry_run: bool) -> dict[str, Any]:
    failed = [r for r in results if r["result"] == "error"]
    return {
        "dry_run": dry_run,
        "rows": len(results),
        "succeeded": len(results) - len(failed),
        "failed": len(failed),
        "results": results,
    }


def create_from_csv(
    settings,
    path: str,
    *,
    tokens_file: str | None = None,
    dry_run: bool = False,
    price_book: str | None = None,
    clock: Clock = system_clock,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Create one customer per row (columns: name, email[, daily_limit, plan, expires_in])."""
    rows = _read_csv(path, ("name", "email"), CREATE_COLUMNS)
    if not dry_run and not tokens_file:
        raise InvalidInput("--from-csv needs --tokens-file FILE: tokens are never printed in bulk")
    results: list[dict[str, Any]] = []
    checked: list[tuple[int, dict, str | None]] = []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        try:
            _check_create(row)
            checked.append((number, row, None))
        except BillingError as exc:
            checked.append((number, row, exc.message))
    if dry_run:
        for number, row, error in checked:
            results.append(_row_result(number, row, error, "would create"))
        return _summary(results, True)
    handle, writer = _open_tokens_file(tokens_file)
    try:
        for index, (number, row, error) in enumerate(checked, 1):
            if error is None:
                try:
                    created = svc.create_customer(
                        settings,
                        name=row["name"],
                        email=row["email"],
                        daily_limit=row.get("daily_limit") or None,
                        plan=row.get("plan") or None,
                        expires_in=row.get("expires_in") or None,
                        price_book=price_book,
                        clock=clock,
                        audited=False,  # one audit record for the whole import, below
                    )
                except BillingError as exc:
                    error = exc.message
                else:
                    writer.writerow([number, created["customer_id"], row["name"], row["email"],
                                     created["token"]])  # fmt: skip
                    handle.flush()
                    results.append(
                        _row_result(number, row, None, "created", created["customer_id"])
                    )
            if error is not None:
                results.append(_row_result(number, row, error, "error"))
            if progress:
                progress(index, len(checked))
    finally:
        handle.close()
        created = [
            {"row": r["row"], "customer_id": r["customer_id"], "name": r["name"]}
            for r in results
            if r["result"] == "created"
        ]
        if created:
            audit.record(settings, "customer.bulk_create", after={"created": created}, clock=clock)
    summary = _summary(results, False)
    summary["tokens_file"] = str(tokens_file)
    return summary


def _row_result(number, row, error, ok_word, customer_id=None) -> dict[str, Any]:
    return {
        "row": number,
        "name": row.get("name"),
        "customer_id": customer_id or row.get("customer_id"),
        "result": "error" if error else ok_word,
        "error": error,
    }


def update_limits_from_csv(
    settings,
    path: str,
    *,
    dry_run: bool = False,
    clock: Clock = system_clock,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Set limits per row (columns: customer_id and any of the limits; empty = unchanged)."""
    rows = _read_csv(path, ("customer_id",), ("customer_id", *LIMIT_COLUMNS))
    results = []
    for index, row in enumerate(rows, 1):
        number = index + 1
        limits = {
            "daily_request_limit": row.get("daily_limit") or None,
            "monthly_token_limit": row.get("monthly_token_limit") or None,
            "requests_per_minute": row.get("requests_per_minute") or None,
            "monthly_budget": row.get("monthly_budget") or None,
            "allowed_models": row.get("allowed_models") or None,
            "allowed_cidrs": row.get("allowed_cidrs") or None,
            "allowed_origins": row.get("allowed_origins") or None,
        }
        try:
            rules.validate_customer_id(row.get("customer_id", ""))
            for key, value in limits.items():
                if value is not None:
                    svc._LIMIT_PARSERS[key](value)
            if dry_run:
                svc.require_customer(settings, row["customer_id"])
                results.append(_row_result(number, row, None, "would update"))
            else:
                svc.update_limits(settings, row["customer_id"], clock=clock, **limits)
                results.append(_row_result(number, row, None, "updated"))
        except BillingError as exc:
            results.append(_row_result(number, row, exc.message, "error"))
        if progress:
            progress(index, len(rows))
    return _summary(results, dry_run)
