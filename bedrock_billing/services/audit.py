"""The audit trail: every state change the CLI makes appends a record (who, what, on which
customer or key, before and after without secrets, the command line without secrets), and
``audit verify`` checks the hash chain and its head.

Who is the caller's AWS identity from ``sts:GetCallerIdentity``, resolved once per process
and settings. The command line is the process's own (``set_command_line``, called by the
CLI at start), with the values of secret options replaced.
"""

from __future__ import annotations

import sys
from typing import Any

from ..core import audit as rules
from ..core.customers import validate_customer_id
from ..core.errors import InvalidInput
from ..core.timeutil import Clock, iso_z, parse_date, system_clock
from ..stores.audit import AuditStore

_identity: dict[tuple, dict[str, str]] = {}
_command_line: list[str] | None = None


def set_command_line(argv: list[str]) -> None:
    global _command_line
    _command_line = list(argv)


def _store(settings) -> AuditStore:
    return AuditStore(settings.client("dynamodb"), settings.tables.invoices)


def caller_identity(settings) -> dict[str, str]:
    """The caller's ARN and account (once per process and profile/region/endpoint)."""
    key = (getattr(settings, "profile", None), getattr(settings, "region", None),
           getattr(settings, "endpoint_url", None))  # fmt: skip
    if key not in _identity:
        try:
            got = settings.client("sts").get_caller_identity()
            _identity[key] = {"arn": got.get("Arn", "unknown"), "account": got.get("Account")}
        except Exception:  # an identity we cannot learn is recorded as such, not guessed
            _identity[key] = {"arn": "unknown", "account": None}
    return _identity[key]


def record(
    settings,
    action: str,
    *,
    customer_id: str | None = None,
    key_id: str | None = None,
    before: Any = None,
    after: Any = None,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """Append one audit record (secrets removed) and return it."""
    who = caller_identity(settings)
    argv = _command_line if _command_line is not None else sys.argv
    entry = {
        "at": iso_z(clock()),
        "who": who["arn"],
        "account": who["account"],
        "action": action,
        "customer": customer_id,
        "key_id": key_id,
        "before": rules.scrub(before),
        "after": rules.scrub(after),
        "command": rules.scrub_argv(["bedrock-billing", *argv[1:]]),
    }
    return _store(settings).append(entry)


def record_installation(
    settings, action: str, details: dict[str, Any], *, clock: Clock = system_clock
) -> str | None:
    """``deploy`` / ``destroy``: append their record to the stage's trail. The stack change
    has happened either way, so a record that cannot be written is returned as a warning
    for the command to print, not raised (it would report a done deploy as failed)."""
    try:
        record(settings, action, after=details, clock=clock)
    except Exception as exc:
        return f"the audit record of {action} was not written ({type(exc).__name__})"
    return None


def list_audit(
    settings,
    *,
    customer_id: str | None = None,
    since: str | None = None,
    action: str | None = None,
) -> list[dict[str, Any]]:
    """Audit records, oldest first, filtered by customer, first day and action (prefix)."""
    cid = validate_customer_id(customer_id) if customer_id else None
    first = iso_z_day(parse_date(since, "--since")) if since else None
    if action is not None and not action.strip():
        raise InvalidInput("--action must not be empty")
    rows = []
    for rec in _store(settings).records():
        if cid and rec.get("customer") != cid:
            continue
        if first and str(rec.get("at", "")) < first:
            continue
        if action and not str(rec.get("action", "")).startswith(action.strip()):
            continue
        rows.append(rec)
    return rows


def iso_z_day(day) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def verify(settings) -> dict[str, Any]:
    store = _store(settings)
    records = sorted(store.records(), key=lambda r: r.get("seq", 0))
    return rules.verify_chain(records, store.head()).to_dict()
