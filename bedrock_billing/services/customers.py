"""Customer and token use cases, shared by the CLI and Python callers.

Each function takes the resolved ``Settings`` and an injectable clock, validates its input
before touching AWS, and returns plain dicts in the documented output shape.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..core import customers as rules
from ..core.errors import Conflict, InvalidInput, NotFound
from ..core.model_parameters import read_model_parameters
from ..core.model_parameters import update as update_parameters
from ..core.origins import parse_origin_list
from ..core.schema import (
    ACTIVE,
    DEFAULT_KEY_ID,
    LIMIT_ATTRIBUTES,
    SUSPENDED,
    TOKEN_ACTIVE,
    TOKEN_PREVIOUS,
    TOKEN_REVOKED,
)
from ..core.timeutil import Clock, Period, epoch_seconds, iso_z, parse_duration, system_clock
from ..core.tokens import display_prefix, generate_token, hash_token, validate_supplied_token
from ..settings import record_stage_region
from ..stores.customers import CustomerStore
from ..stores.dynamo import create_missing_tables, is_missing_table
from . import audit
from .pricebook import check_plan, read_overrides_file

Notify = Callable[[str], None]
REVOKED_RETENTION = timedelta(days=30)  # revoked/ended token records kept this long for audit


def _store(settings, page_size: int | None = None) -> CustomerStore:
    return CustomerStore(settings.client("dynamodb"), settings.tables, page_size=page_size)


def init_tables(settings, notify: Notify | None = None) -> list[dict[str, str]]:
    """Create the installation's missing tables; safe to run twice. The stage's region is
    recorded in the config file, so an ambient AWS_REGION cannot move it later."""
    rows = create_missing_tables(settings.client("dynamodb"), settings.tables, notify)
    path = record_stage_region(settings)
    if path and notify:
        notify(f"recorded region {settings.region} for stage {settings.stage} in {path}")
    return rows


def _create_tables_implicitly(settings, notify: Notify | None) -> None:
    """The first write creates its tables, but only where the stage lives: never in a
    region the config file does not record for it."""
    recorded = settings.recorded_region
    if recorded and settings.region != recorded:
        raise NotFound(
            f"stage {settings.stage} has no tables in {settings.region} (it is recorded in "
            f"{recorded}): run `bedrock-billing init --region {settings.region}` to create "
            "them there on purpose"
        )
    init_tables(settings, notify)


def customer_names(settings, customer_ids) -> dict[str, str]:
    """Names for ``customer_ids`` (a few are read one by one, many by one Scan)."""
    wanted = set(customer_ids)
    store = _store(settings)
    if len(wanted) <= 10:
        items = []
        for customer_id in sorted(wanted):
            try:
                items.append(store.get(customer_id))
            except NotFound:  # usage of a deleted customer still shows, by id
                continue
    else:
        items = store.scan()
    return {i["customer_id"]: i.get("name") for i in items if i["customer_id"] in wanted}


def resolve_customer_id(settings, text: str) -> str:
    """A customer id from the id itself or a unique prefix of it (as tables show it)."""
    value, whole = rules.customer_id_or_prefix(text)
    if whole:
        return value
    return rules.pick_by_prefix(value, (item["customer_id"] for item in _store(settings).scan()))


def _token_record(
    token: str, customer_id: str, now: datetime, expires_at: datetime | None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "token_hash": hash_token(token),
        "customer_id": customer_id,
        "prefix": display_prefix(token),
        "state": TOKEN_ACTIVE,
        "created_at": iso_z(now),
        # The customer's own token is its default key (services/keys.py names the others).
        "key_id": DEFAULT_KEY_ID,
        "key_name": "default",
    }
    if expires_at:
        record["expires_at"] = iso_z(expires_at)
        record["ttl"] = epoch_seconds(expires_at + REVOKED_RETENTION)
    return record


def _expiry(now: datetime, expires_in: str | None) -> datetime | None:
    if not expires_in:
        return None
    delta = parse_duration(expires_in)
    if delta <= timedelta(0):
        raise InvalidInput("--expires-in must be positive")
    return now + delta


def public_customer(item: dict[str, Any]) -> dict[str, Any]:
    """The documented shape of a customer in every output (never a token hash)."""
    return {
        "customer_id": item["customer_id"],
        "name": item.get("name"),
        "email": item.get("email"),
        "status": item.get("status", ACTIVE),
        "plan": item.get("plan"),
        "created_at": item.get("created_at"),
        "updated_at": item.get("updated_at"),
        "token_expires_at": item.get("token_expires_at"),
        "limits": {name: item.get(name) for name in LIMIT_ATTRIBUTES},
        "pricing_overrides": item.get("pricing_overrides"),
        "model_parameters": item.get("model_parameters"),
        "inference_profiles": item.get("inference_profiles"),
    }


def create_customer(
    settings,
    *,
    name: str,
    email: str,
    token: str | None = None,
    expires_in: str | None = None,
    daily_limit: str | int | None = None,
    plan: str | None = None,
    price_book: str | None = None,
    clock: Clock = system_clock,
    notify: Notify | None = None,
    audited: bool = True,
) -> dict[str, Any]:
    """A new customer and its token; the token is in the result and nowhere else.
    ``audited=False``: the caller records the change itself (a bulk import, once)."""
    name = rules.validate_name(name)
    email = rules.validate_email(email)
    if plan:
        check_plan(settings, plan, price_book)
    secret = validate_supplied_token(token) if token is not None else generate_token()
    daily = rules.parse_count_limit(daily_limit, "daily limit")
    now = clock()
    expires_at = _expiry(now, expires_in)
    customer_id = rules.new_customer_id()
    record = _token_record(secret, customer_id, now, expires_at)
    customer = {
        "customer_id": customer_id,
        "name": name,
        "email": email,
        "status": ACTIVE,
        "created_at": iso_z(now),
        "updated_at": iso_z(now),
        "current_token_hash": record["token_hash"],
        "token_expires_at": record.get("expires_at"),
        "daily_request_limit": daily,
    }
    if plan:
        customer["plan"] = plan
        customer["plan_history"] = [{"plan": plan, "from_period": str(Period.of(now))}]
    store = _store(settings)
    try:
        store.create(customer, record)
    except Exception as exc:
        if not is_missing_table(exc):
            raise
        # The spec promises the first command creates its tables; say so on stderr.
        _create_tables_implicitly(settings, notify)
        store.create(customer, record)
    result = public_customer(customer)
    if audited:
        audit.record(
            settings, "customer.create", customer_id=customer_id, after=result, clock=clock
        )
    result["token"] = secret
    result["token_prefix"] = record["prefix"]
    return result


def list_customers(
    settings,
    *,
    status: str | None = None,
    expiring_within: str | None = None,
    limit: int | None = None,
    clock: Clock = system_clock,
    page_size: int | None = None,
) -> list[dict[str, Any]]:
    """Every customer (all pages of the table), sorted by name then id."""
    if status not in (None, ACTIVE, SUSPENDED):
        raise InvalidInput(f"invalid status {status!r}: choose active or suspended")
    if limit is not None and limit <= 0:
        raise InvalidInput("--limit must be positive")
    horizon = clock() + parse_duration(expiring_within) if expiring_within else None
    rows = []
    for item in _store(settings, page_size).scan():
        if status and item.get("status", ACTIVE) != status:
            continue
        if horizon is not None:
            expires = item.get("token_expires_at")
            if not expires or expires > iso_z(horizon):
                continue
        rows.append(public_customer(item))
    rows.sort(key=rules.sort_key)
    return rows[:limit] if limit else rows


def customer_page(
    settings,
    *,
    status: str | None = None,
    expiring_within: str | None = None,
    max_items: int | None = None,
    starting_token: str | None = None,
    clock: Clock = system_clock,
    page_size: int | None = None,
) -> dict[str, Any]:
    """One page of the sorted customer list, as the AWS CLI pages: ``max_items`` rows after
    ``starting_token``; ``next_token`` continues, ``total`` counts every match."""
    rows = list_customers(
        settings, status=status, expiring_within=expiring_within, clock=clock,
        page_size=page_size,
    )  # fmt: skip
    if max_items is not None and max_items <= 0:
        raise InvalidInput("--max-items must be positive")
    after = rules.decode_page_token(starting_token) if starting_token else None
    remaining = [r for r in rows if after is None or rules.sort_key(r) > after]
    page = remaining[:max_items] if max_items else remaining
    more = len(remaining) - len(page)
    return {
        "customers": page,
        "count": len(page),
        "total": len(rows),
        "remaining": more,
        "next_token": rules.encode_page_token(rules.sort_key(page[-1])) if more else None,
    }


def show_customer(settings, customer_id: str, *, clock: Clock = system_clock) -> dict[str, Any]:
    """One customer with its limits, plan and its tokens' prefixes and states."""
    customer_id = resolve_customer_id(settings, customer_id)
    store = _store(settings)
    item = store.get(customer_id)
    now = clock()
    result = public_customer(item)
    problems = _record_problems(rules.read_customer_record, item, "")
    hashes = [item.get("current_token_hash"), item.get("previous_token_hash")]
    result["tokens"] = []
    for t in store.tokens(hashes):
        found = _record_problems(rules.read_token_record, t, f"token {t.get('prefix')}: ")
        problems += found
        result["tokens"].append(
            {
                "prefix": t.get("prefix"),
                "role": "current"
                if t["token_hash"] == item.get("current_token_hash")
                else "previous",
                "state": "invalid" if found else rules.token_display_state(t, now),
                "created_at": t.get("created_at"),
                "expires_at": t.get("expires_at"),
                "grace_until": t.get("grace_until"),
            }
        )
    result["plan_history"] = item.get("plan_history", [])
    # Fields the proxy cannot read: it refuses the customer (customer_record_invalid).
    result["record_problems"] = problems
    return result


def _record_problems(read, item: dict[str, Any], label: str) -> list[str]:
    try:
        read(item)
    except rules.InvalidRecord as exc:
        return [label + p for p in exc.problems]
    return []


def rotate_token(
    settings,
    customer_id: str,
    *,
    token: str | None = None,
    grace_period: str = "24h",
    expires_in: str | None = None,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """Issue a new token. The old one keeps working until the grace period ends; a token
    still in grace from an earlier rotation stops at once (at most one previous token)."""
    customer_id = resolve_customer_id(settings, customer_id)
    secret = validate_supplied_token(token) if token is not None else generate_token()
    grace = parse_duration(grace_period)
    if grace < timedelta(0):
        raise InvalidInput("--grace-period must not be negative")
    now = clock()
    store = _store(settings)
    item = store.get(customer_id)
    new_record = _token_record(secret, customer_id, now, _expiry(now, expires_in))
    old_hash = item.get("current_token_hash")
    ended_hash = item.get("previous_token_hash")
    if new_record["token_hash"] in (old_hash, ended_hash):
        # One transaction cannot both issue and retire the same item: DynamoDB would refuse
        # it as a ValidationException, reported as an AWS failure.
        raise Conflict("that token is already in use: supply a new one, or omit --token")
    revoked = {"state": TOKEN_REVOKED, "revoked_at": iso_z(now)}
    revoked["ttl"] = epoch_seconds(now + REVOKED_RETENTION)
    old_update = None
    grace_until = None
    if old_hash:
        if grace > timedelta(0):
            grace_until = now + grace
            old_update = {
                "state": TOKEN_PREVIOUS,
                "grace_until": iso_z(grace_until),
                "ttl": epoch_seconds(grace_until + REVOKED_RETENTION),
            }
        else:
            old_update = dict(revoked)
    customer_update = {
        "current_token_hash": new_record["token_hash"],
        "updated_at": iso_z(now),
    }
    if new_record.get("expires_at"):
        customer_update["token_expires_at"] = new_record["expires_at"]
    removals = [] if new_record.get("expires_at") else ["token_expires_at"]
    if old_hash and grace_until:
        customer_update["previous_token_hash"] = old_hash
    else:
        removals.append("previous_token_hash")
    store.rotate(
        customer_id,
        new_record,
        old_hash,
        old_update,
        ended_hash if ended_hash and ended_hash != old_hash else None,
        revoked,
        customer_update,
        tuple(removals),
    )
    old_prefix = store.tokens([old_hash])[0].get("prefix") if old_hash else None
    result = {
        "customer_id": customer_id,
        "token": secret,
        "token_prefix": new_record["prefix"],
        "expires_at": new_record.get("expires_at"),
        "previous_token_prefix": old_prefix,
        "previous_valid_until": iso_z(grace_until),
    }
    audit.record(
        settings, "token.rotate", customer_id=customer_id, key_id=DEFAULT_KEY_ID,
        before={"token_prefix": old_prefix}, after=result, clock=clock,
    )  # fmt: skip
    return result


def revoke_token(
    settings, customer_id: str, *, previous_only: bool = False, clock: Clock = system_clock
) -> dict[str, Any]:
    """Revoke a customer's token(s): the previous one, and unless ``previous_only`` the current
    one too (``update-token`` then issues a new one). The records change at once; a proxy
    container that cached the token keeps accepting it up to its auth cache time."""
    customer_id = resolve_customer_id(settings, customer_id)
    now = clock()
    store = _store(settings)
    item = store.get(customer_id)
    targets = [item.get("previous_token_hash")]
    if not previous_only:
        targets.append(item.get("current_token_hash"))
    targets = [t for t in targets if t]
    if not targets:
        raise Conflict(
            "this customer has no previous token to revoke"
            if previous_only
            else "this customer has no token to revoke"
        )
    revoked = {
        "state": TOKEN_REVOKED,
        "revoked_at": iso_z(now),
        "ttl": epoch_seconds(now + REVOKED_RETENTION),
    }
    removals = ["previous_token_hash"] + ([] if previous_only else ["current_token_hash"])
    records = store.tokens(targets)
    expected = {k: item.get(k) for k in ("current_token_hash", "previous_token_hash")}
    store.update_tokens(
        {t: revoked for t in targets},
        customer_id,
        {"updated_at": iso_z(now)},
        tuple(removals),
        expected=expected,
    )
    result = {
        "customer_id": customer_id,
        "revoked": [r.get("prefix") for r in records],
        "revoked_at": iso_z(now),
    }
    audit.record(
        settings, "token.revoke", customer_id=customer_id, key_id=DEFAULT_KEY_ID, after=result,
        clock=clock,
    )  # fmt: skip
    return result


def set_status(
    settings, customer_id: str, status: str, *, clock: Clock = system_clock
) -> dict[str, Any]:
    """Suspend or reactivate a customer (its tokens are kept; the proxy refuses them)."""
    customer_id = resolve_customer_id(settings, customer_id)
    if status not in (ACTIVE, SUSPENDED):
        raise InvalidInput(f"invalid status {status!r}")
    store = _store(settings)
    before = public_customer(store.get(customer_id))
    item = store.update(customer_id, {"status": status, "updated_at": iso_z(clock())})
    result = public_customer(item)
    action = "customer.suspend" if status == SUSPENDED else "customer.reactivate"
    audit.record(
        settings, action, customer_id=customer_id, before=before, after=result, clock=clock
    )
    return result


def update_customer(
    settings,
    customer_id: str,
    *,
    name: str | None = None,
    email: str | None = None,
    plan: str | None = None,
    price_book: str | None = None,
    pricing_overrides: str | None = None,
    clear_pricing_overrides: bool = False,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """Change name, email, plan or the customer's own pricing overrides (a file: discounts,
    unit prices, markup, base fee, minimum; see docs/pricing.md). A plan change takes effect
    from the next period."""
    customer_id = resolve_customer_id(settings, customer_id)
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = rules.validate_name(name)
    if email is not None:
        changes["email"] = rules.validate_email(email)
    removals: tuple[str, ...] = ()
    if pricing_overrides is not None and clear_pricing_overrides:
        raise InvalidInput("give --pricing-overrides FILE or --clear-pricing-overrides, not both")
    if pricing_overrides is not None:
        changes["pricing_overrides"] = read_overrides_file(pricing_overrides)
    if clear_pricing_overrides:
        removals = ("pricing_overrides",)
    if not changes and plan is None and not removals:
        raise InvalidInput("nothing to update: give --name, --email, --plan or --pricing-overrides")
    if plan is not None:
        check_plan(settings, plan, price_book)
    now = clock()
    store = _store(settings)
    read_at = None
    if plan is not None:
        current = store.get(customer_id)
        read_at = current.get("updated_at")  # the history is read-modify-write: guard it
        history = [h for h in current.get("plan_history", []) if h.get("from_period")]
        this_period = str(Period.of(now))
        if not history:
            changes["plan"] = plan  # no plan yet: the new one applies at once
            history = [{"plan": plan, "from_period": this_period}]
        else:
            nxt = str(Period.of(now).next())
            history = [h for h in history if h["from_period"] <= this_period]
            history.append({"plan": plan, "from_period": nxt})
        changes["plan_history"] = history
    changes["updated_at"] = iso_z(now)
    before = public_customer(store.get(customer_id))
    result = public_customer(
        store.update(customer_id, changes, removals, expected_updated_at=read_at)
    )
    audit.record(
        settings, "customer.update", customer_id=customer_id, before=before, after=result,
        clock=clock,
    )  # fmt: skip
    return result


_LIMIT_PARSERS = {
    "daily_request_limit": lambda v: rules.parse_count_limit(v, "daily limit"),
    "monthly_token_limit": lambda v: rules.parse_count_limit(v, "monthly token limit"),
    "requests_per_minute": lambda v: rules.parse_count_limit(v, "requests per minute"),
    "monthly_budget": lambda v: rules.parse_money_limit(v, "monthly budget"),
    "allowed_models": rules.parse_model_list,
    "allowed_cidrs": rules.parse_cidr_list,
    "allowed_origins": parse_origin_list,
}


def update_limits(
    settings, customer_id: str, *, clock: Clock = system_clock, **limits: Any
) -> dict[str, Any]:
    """Set or clear limits. A value of 'unlimited' (or 'none') removes that limit; a limit
    not given is left as it is."""
    customer_id = resolve_customer_id(settings, customer_id)
    unknown = set(limits) - set(_LIMIT_PARSERS)
    if unknown:
        raise InvalidInput(f"unknown limit {sorted(unknown)[0]!r}")
    given = {k: v for k, v in limits.items() if v is not None}
    if not given:
        raise InvalidInput(
            "no limit given: use --daily-limit, --monthly-token-limit, --requests-per-minute, "
            "--monthly-budget, --allowed-models, --allowed-cidrs or --allowed-origins"
        )
    sets: dict[str, Any] = {"updated_at": iso_z(clock())}
    removals = []
    for key, raw in given.items():
        parsed = _LIMIT_PARSERS[key](raw)
        if parsed is None:
            removals.append(key)
        else:
            sets[key] = parsed
    store = _store(settings)
    before = public_customer(store.get(customer_id))["limits"]
    result = public_customer(store.update(customer_id, sets, tuple(removals)))
    audit.record(
        settings, "limits.update", customer_id=customer_id, before=before,
        after=result["limits"], clock=clock,
    )  # fmt: skip
    return result


def update_model_parameters(
    settings, customer_id: str, *, clock: Clock = system_clock, **given: Any
) -> dict[str, Any]:
    """Set or clear the customer's model parameters (core/model_parameters.py): defaults the
    proxy fills in and the max_tokens cap. A value not given is kept; 'unset' clears one."""
    customer_id = resolve_customer_id(settings, customer_id)
    if all(value is None for value in given.values()):
        raise InvalidInput(
            "no parameter given: use --max-tokens, --max-tokens-cap, --on-cap, --temperature "
            "or --guardrail"
        )
    store = _store(settings)
    item = store.get(customer_id)
    current, _damaged = read_model_parameters(item.get("model_parameters"))  # a damaged map
    stored = update_parameters(current, **given).to_item()  # is replaced by what is given
    changes: dict[str, Any] = {"updated_at": iso_z(clock())}
    removals: tuple[str, ...] = ()
    if stored is None:
        removals = ("model_parameters",)
    else:
        changes["model_parameters"] = stored
    result = public_customer(
        store.update(customer_id, changes, removals, expected_updated_at=item.get("updated_at"))
    )
    audit.record(
        settings, "model_parameters.update", customer_id=customer_id,
        before=item.get("model_parameters"), after=result["model_parameters"], clock=clock,
    )  # fmt: skip
    return result


def require_customer(settings, customer_id: str) -> dict[str, Any]:
    """The customer item, or NotFound (for other services)."""
    return _store(settings).get(resolve_customer_id(settings, customer_id))
