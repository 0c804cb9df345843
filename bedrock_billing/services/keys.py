"""A customer's named keys: create, list, revoke, rotate, usage per key, and the migration of
tokens made before keys to the customer's default key.

A key is one or two token items sharing a ``key_id`` (the current token, and the previous
one during a rotation's grace) plus its entry in the customer item's ``keys`` map. The
customer's own token (``create`` / ``update-token`` / ``revoke-token``) is its default key
(``key_id`` ``default``), listed with the others. A key's own limits (daily requests,
allowed models, an IP allowlist) are stored on its token items, where the proxy reads them
with no extra call, and narrow the customer's; the customer's limits hold across all keys.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from ..core import customers as rules
from ..core.errors import Conflict, InvalidInput, NotFound
from ..core.schema import (
    DEFAULT_KEY_ID,
    KEY_ATTRIBUTES,
    KEY_COUNTERS,
    TOKEN_PREVIOUS,
    TOKEN_REVOKED,
)
from ..core.timeutil import (
    Clock,
    epoch_seconds,
    iso_z,
    parse_duration,
    resolve_date_range,
    system_clock,
)
from ..core.tokens import generate_token
from ..stores.customers import CustomerStore
from ..stores.keys import KeyStore
from . import audit
from . import customers as customer_svc
from .customers import REVOKED_RETENTION, _expiry, _token_record

_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_KEY_ID = re.compile(r"^(default|key_[0-9a-f]{16})$")


def _stores(settings) -> tuple[CustomerStore, KeyStore]:
    client = settings.client("dynamodb")
    return CustomerStore(client, settings.tables), KeyStore(client, settings.tables)


def validate_key_name(name: str) -> str:
    value = (name or "").strip()
    if not _KEY_NAME.match(value):
        raise InvalidInput(
            f"invalid key name {name[:60]!r}: letters, digits, '.', '_' or '-', at most 63"
        )
    return value


def validate_key_id(key_id: str) -> str:
    value = (key_id or "").strip().lower()
    if not _KEY_ID.match(value):
        raise InvalidInput(f"invalid key id {key_id[:60]!r}: 'default' or key_ and 16 hex digits")
    return value


def _key_limits(daily_limit: str | int | None, allowed_models, allowed_cidrs) -> dict[str, Any]:
    return {
        "daily_request_limit": rules.parse_count_limit(daily_limit, "daily limit"),
        "allowed_models": rules.parse_model_list(allowed_models),
        "allowed_cidrs": rules.parse_cidr_list(allowed_cidrs),
    }


def _narrowing_problem(customer: dict[str, Any], limits: dict[str, Any]) -> str | None:
    """A key's limits narrow the customer's, never widen them: say which one would."""
    daily, cust_daily = limits["daily_request_limit"], customer.get("daily_request_limit")
    if daily is not None and cust_daily is not None and daily > cust_daily:
        return f"--daily-limit {daily} is above the customer's {cust_daily}"
    models, cust_models = limits["allowed_models"], customer.get("allowed_models")
    if models is not None and cust_models is not None:
        extra = sorted(set(models) - set(cust_models))
        if extra:
            return f"model {extra[0]} is not allowed for the customer"
    return None


def create_key(
    settings,
    customer_id: str,
    *,
    name: str,
    expires_in: str | None = None,
    allowed_models=None,
    daily_limit: str | int | None = None,
    allowed_cidrs=None,
    test: bool = False,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """A new named key; its token is in the result and nowhere else."""
    customer_id = rules.validate_customer_id(customer_id)
    name = validate_key_name(name)
    limits = _key_limits(daily_limit, allowed_models, allowed_cidrs)
    now = clock()
    expires_at = _expiry(now, expires_in)
    customers, keys = _stores(settings)
    customer = customers.get(customer_id)
    problem = _narrowing_problem(customer, limits)
    if problem:
        raise InvalidInput(f"a key's limits narrow the customer's: {problem}")
    existing = customer.get("keys") or {}
    if name == "default" or any(e.get("name") == name for e in existing.values()):
        raise Conflict(f"the customer already has a key named {name!r}")
    key_id = "key_" + secrets.token_hex(8)
    secret = generate_token(test=test)
    token = _token_record(secret, customer_id, now, expires_at)
    token.update(key_id=key_id, key_name=name, test=test or None, **limits)
    entry = {
        "name": name,
        "test": test,
        "created_at": iso_z(now),
        "state": "active",
        "current_token_hash": token["token_hash"],
    }
    keys.create(customer_id, key_id, token, entry, has_map="keys" in customer)
    out = _public(key_id, entry, token, now)
    audit.record(settings, "key.create", customer_id=customer_id, key_id=key_id, after=out,
                 clock=clock)  # fmt: skip
    out["token"] = secret
    return out


def _public(key_id: str, entry: dict[str, Any], token: dict[str, Any] | None, now) -> dict:
    token = token or {}
    state = entry.get("state", "active")
    if state == "active" and token:
        state = rules.token_display_state(token, now)
    return {
        "key_id": key_id,
        "name": entry.get("name"),
        "test": bool(entry.get("test")),
        "state": state,
        "token_prefix": token.get("prefix"),
        "created_at": entry.get("created_at"),
        "expires_at": token.get("expires_at"),
        "daily_request_limit": token.get("daily_request_limit"),
        "allowed_models": token.get("allowed_models"),
        "allowed_cidrs": token.get("allowed_cidrs"),
    }


def _entries(customer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every key of a customer: the default key (its own token) and the named ones."""
    out: dict[str, dict[str, Any]] = {}
    if customer.get("current_token_hash"):
        out[DEFAULT_KEY_ID] = {
            "name": "default",
            "test": False,
            "created_at": customer.get("created_at"),
            "state": "active",
            "current_token_hash": customer["current_token_hash"],
        }
    out.update(customer.get("keys") or {})
    return out


def list_keys(settings, customer_id: str, *, clock: Clock = system_clock) -> list[dict[str, Any]]:
    customer_id = rules.validate_customer_id(customer_id)
    customers, _ = _stores(settings)
    customer = customers.get(customer_id)
    entries = _entries(customer)
    tokens = {
        t["token_hash"]: t
        for t in customers.tokens([e.get("current_token_hash") for e in entries.values()])
    }
    now = clock()
    rows = [
        _public(kid, e, tokens.get(e.get("current_token_hash")), now) for kid, e in entries.items()
    ]
    return sorted(rows, key=lambda r: (r["key_id"] != DEFAULT_KEY_ID, r["name"] or ""))


def _named_entry(customer: dict[str, Any], key_id: str) -> dict[str, Any]:
    entry = (customer.get("keys") or {}).get(key_id)
    if entry is None:
        raise NotFound(f"the customer has no key {key_id}")
    return entry


def _revoked(now) -> dict[str, Any]:
    return {
        "state": TOKEN_REVOKED,
        "revoked_at": iso_z(now),
        "ttl": epoch_seconds(now + REVOKED_RETENTION),
    }


def revoke_key(
    settings, customer_id: str, key_id: str, *, clock: Clock = system_clock
) -> dict[str, Any]:
    """Revoke one key (its current and any previous token); the customer's other keys go on.
    A proxy container that cached the token accepts it up to its auth cache time."""
    customer_id = rules.validate_customer_id(customer_id)
    key_id = validate_key_id(key_id)
    if key_id == DEFAULT_KEY_ID:
        result = customer_svc.revoke_token(settings, customer_id, clock=clock)
        return {"customer_id": customer_id, "key_id": key_id, **result}
    customers, keys = _stores(settings)
    customer = customers.get(customer_id)
    entry = dict(_named_entry(customer, key_id))
    if entry.get("state") == "revoked":
        raise Conflict(f"key {key_id} is already revoked")
    now = clock()
    hashes = [h for h in (entry.get("current_token_hash"), entry.get("previous_token_hash")) if h]
    current = entry.get("current_token_hash")
    entry.update(state="revoked", revoked_at=iso_z(now))
    entry.pop("previous_token_hash", None)
    keys.change(customer_id, key_id, entry, current, {h: _revoked(now) for h in hashes})
    result = {"customer_id": customer_id, "key_id": key_id, "revoked_at": iso_z(now)}
    audit.record(settings, "key.revoke", customer_id=customer_id, key_id=key_id,
                 before={"state": "active"}, after={"state": "revoked"}, clock=clock)  # fmt: skip
    return result


def rotate_key(
    settings,
    customer_id: str,
    key_id: str,
    *,
    grace_period: str = "24h",
    expires_in: str | None = None,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """A new token for one key, with the key's id, name, test flag and limits; the old token
    works until the grace period ends (a token still in grace from before stops at once)."""
    customer_id = rules.validate_customer_id(customer_id)
    key_id = validate_key_id(key_id)
    if key_id == DEFAULT_KEY_ID:
        result = customer_svc.rotate_token(
            settings, customer_id, grace_period=grace_period, expires_in=expires_in, clock=clock
        )
        return {"key_id": key_id, **result}
    grace = parse_duration(grace_period)
    if grace < timedelta(0):
        raise InvalidInput("--grace-period must not be negative")
    customers, keys = _stores(settings)
    customer = customers.get(customer_id)
    entry = dict(_named_entry(customer, key_id))
    if entry.get("state") == "revoked":
        raise Conflict(f"key {key_id} is revoked: create a new key")
    now = clock()
    old_hash, ended_hash = entry["current_token_hash"], entry.get("previous_token_hash")
    old = customers.tokens([old_hash])
    old = old[0] if old else {}
    secret = generate_token(test=bool(entry.get("test")))
    token = _token_record(secret, customer_id, now, _expiry(now, expires_in))
    token.update({k: old[k] for k in KEY_ATTRIBUTES if k in old})
    changes: dict[str, dict[str, Any]] = {}
    grace_until = now + grace if grace > timedelta(0) else None
    if grace_until:
        changes[old_hash] = {
            "state": TOKEN_PREVIOUS,
            "grace_until": iso_z(grace_until),
            "ttl": epoch_seconds(grace_until + REVOKED_RETENTION),
        }
        entry["previous_token_hash"] = old_hash
    else:
        changes[old_hash] = _revoked(now)
        entry.pop("previous_token_hash", None)
    if ended_hash and ended_hash != old_hash:
        changes[ended_hash] = _revoked(now)
    entry["current_token_hash"] = token["token_hash"]
    keys.change(customer_id, key_id, entry, old_hash, changes, new_token=token)
    result = {
        "customer_id": customer_id,
        "key_id": key_id,
        "token": secret,
        "token_prefix": token["prefix"],
        "expires_at": token.get("expires_at"),
        "previous_token_prefix": old.get("prefix"),
        "previous_valid_until": iso_z(grace_until),
    }
    audit.record(settings, "key.rotate", customer_id=customer_id, key_id=key_id,
                 before={"token_prefix": old.get("prefix")}, after=result, clock=clock)  # fmt: skip
    return result


def key_usage(
    settings,
    customer_id: str,
    *,
    start_date: str | None = None,
    end_date: str | None = None,
    period: str | None = None,
    clock: Clock = system_clock,
    source: str = "dynamodb",
) -> dict[str, Any]:
    """Usage per key and day (test keys' requests apart, in ``test_requests``); each row
    names its key, never a token. ``source``: ``dynamodb`` reads the KEY# counters,
    ``athena`` the usage log (its lines carry ``key_id``; lines from before keys have none,
    shown as key ``-``)."""
    customer_id = rules.validate_customer_id(customer_id)
    source = source.strip().lower()
    if source not in ("dynamodb", "athena"):
        raise InvalidInput(f"invalid --source {source[:20]!r}: expected dynamodb or athena")
    first, last = resolve_date_range(start_date, end_date, period, clock)
    customers, keys = _stores(settings)
    names = {kid: e.get("name") for kid, e in _entries(customers.get(customer_id)).items()}
    if source == "athena":
        found = _key_days_from_log(settings, customer_id, first, last)
    else:
        found = keys.key_days(customer_id, first, last)
    rows = []
    for row in found:
        rows.append({"customer_id": customer_id, "key_name": names.get(row["key_id"]), **row})
    totals: dict[str, dict[str, int]] = {}
    for row in rows:
        into = totals.setdefault(row["key_id"], dict.fromkeys(KEY_COUNTERS, 0))
        for counter in KEY_COUNTERS:
            into[counter] += row[counter]
    return {
        "customer_id": customer_id,
        "start_date": first.isoformat(),
        "end_date": last.isoformat(),
        "group_by": "key",
        "source": source,
        "rows": sorted(rows, key=lambda r: (r["key_id"], r["day"])),
        "totals": totals,
    }


def _key_days(records) -> list[dict[str, Any]]:
    """``USAGE_BY_KEY_SQL``'s result tuples as key_days' rows."""
    rows = []
    for record in records:
        key_id, day, *counts = record
        row = {"key_id": key_id or "-", "day": str(day)[:10]}
        row.update({n: int(v or 0) for n, v in zip(KEY_COUNTERS, counts, strict=True)})
        rows.append(row)
    return rows


def _key_days_from_log(settings, customer_id: str, first, last) -> list[dict[str, Any]]:
    from ..core.logschema import key_usage_query
    from .usage_sources import log_store

    sql, params = key_usage_query(first, last, customer_id)
    return _key_days(log_store(settings).query_range(first, last, sql, params))


def migrate_keys(settings, *, dry_run: bool = False) -> dict[str, Any]:
    """Give every token item made before keys (no ``key_id``) its customer's default key.
    Safe to run twice (each write is conditional on the item having no key); ``dry_run``
    reports what it would change and writes nothing."""
    customers, keys = _stores(settings)
    rows = []
    for customer in customers.scan():
        hashes = [customer.get("current_token_hash"), customer.get("previous_token_hash")]
        for token in customers.tokens([h for h in hashes if h]):
            if token.get("key_id"):
                continue
            changed = True
            if not dry_run:
                changed = keys.set_key_attributes(
                    token["token_hash"], {"key_id": DEFAULT_KEY_ID, "key_name": "default"}
                )
            if changed:
                rows.append(
                    {
                        "customer_id": customer["customer_id"],
                        "token_prefix": token.get("prefix"),
                        "key_id": DEFAULT_KEY_ID,
                        "result": "would migrate" if dry_run else "migrated",
                    }
                )
    if rows and not dry_run:
        audit.record(settings, "keys.migrate", after={"migrated": len(rows), "tokens": rows})
    return {"dry_run": dry_run, "migrated": len(rows), "tokens": rows}
