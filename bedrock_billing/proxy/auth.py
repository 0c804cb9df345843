"""Bearer-token authentication: hash, look up (cached), check state, expiry and customer.

A cold lookup is two eventually consistent ``GetItem`` calls (the token item, then its
customer). The pair is cached per token hash in the warm container for
``auth_cache_ttl`` seconds and an unknown hash for ``negative_cache_ttl``; the cache is an
LRU bounded at ``auth_cache_size`` entries. Expiry and grace instants are checked against
the clock on every request, cached or not, so they bite on time; a revocation, a
suspension or a limit change bites within ``auth_cache_ttl`` (plus DynamoDB's replication
delay, typically under a second).

A token belongs to a named key (docs/schema.md, "Named keys"): the token item carries the
key's id, its test flag and its own limits, so a key costs no extra read. The key's limits
narrow the customer's (allowed models are intersected; a key's daily limit is checked by
the meter in addition to the customer's); an IP allowlist on the customer or on the key is
checked against API Gateway's source address (``Request.source_ip``), never a header.

Items are read with the core's one codec and strictly (``core.customers``): a limit
stored as a string or a fraction, ``allowed_models`` that is not a list, a malformed
budget, status, state or instant refuse the customer with ``customer_record_invalid``
(503), never serve it unlimited. Such a refusal is cached like an unknown token.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ..core import schema
from ..core.customers import (
    InvalidRecord,
    TokenRecord,
    address_allowed,
    read_customer_record,
    read_token_record,
)
from ..core.items import ItemError, from_item
from ..core.model_parameters import ModelParameters
from ..core.timeutil import Clock
from ..core.tokens import hash_token
from . import errors as E
from .errors import ProxyError
from .prices import to_pico


@dataclass(frozen=True)
class Customer:
    customer_id: str
    status: str
    daily_request_limit: int | None = None
    monthly_token_limit: int | None = None
    requests_per_minute: int | None = None
    monthly_budget_pico: int | None = None
    allowed_models: frozenset[str] | None = None
    allowed_cidrs: tuple[str, ...] | None = None
    allowed_origins: tuple[str, ...] | None = None  # browser origins (CORS); None: any
    model_parameters: ModelParameters | None = None  # defaults and cap (proxy/parameters.py)
    # The key the token belongs to (None: a token item from before keys) and its own limits.
    key_id: str | None = None
    test: bool = False
    key_daily_limit: int | None = None
    inference_profiles: tuple[tuple[str, str], ...] = ()  # (source model id, profile ARN)


def for_key(customer: Customer, token: TokenRecord) -> Customer:
    """The customer as one of its keys sees it: the key's allowed models intersect the
    customer's (a key never widens them); its daily limit is metered apart (meter.py)."""
    models = customer.allowed_models
    if token.allowed_models is not None:
        models = token.allowed_models if models is None else models & token.allowed_models
    return replace(
        customer,
        allowed_models=models,
        key_id=token.key_id,
        test=token.test,
        key_daily_limit=token.daily_request_limit,
    )


def record_invalid() -> ProxyError:
    """The refusal for a customer or token item the proxy cannot read strictly: never
    served (not unlimited, not a 500); the log line's error code feeds an alarm."""
    return ProxyError(
        503,
        E.CUSTOMER_RECORD_INVALID,
        "the account's settings cannot be read; its operator must correct them",
    )


def parse_customer(item: dict) -> Customer:
    """A customer item, strictly (``core.customers.read_customer_record``); a damaged item
    raises the ``customer_record_invalid`` refusal."""
    try:
        record = read_customer_record(from_item(item))
    except (ItemError, InvalidRecord):
        raise record_invalid() from None
    budget = record.monthly_budget
    return Customer(
        customer_id=record.customer_id,
        status=record.status,
        daily_request_limit=record.daily_request_limit,
        monthly_token_limit=record.monthly_token_limit,
        requests_per_minute=record.requests_per_minute,
        monthly_budget_pico=to_pico(budget) if budget is not None else None,
        allowed_models=record.allowed_models,
        allowed_cidrs=record.allowed_cidrs,
        allowed_origins=record.allowed_origins,
        model_parameters=record.model_parameters,
        inference_profiles=record.inference_profiles,
    )


def parse_token(item: dict) -> TokenRecord:
    try:
        return read_token_record(from_item(item))
    except (ItemError, InvalidRecord):
        raise record_invalid() from None


def _before(now: datetime, limit: datetime | None) -> bool:
    return limit is None or now < limit


def check_token(
    token: TokenRecord, customer: Customer | None, now: datetime, allow_suspended: bool = False
) -> None:
    """Refuse a token that is revoked, expired, past its grace, or whose customer is not
    active (unless ``allow_suspended``: the portal's reads); ``customer`` None: its item
    could not be read (refused, never served)."""
    if token.state == schema.TOKEN_REVOKED:
        raise ProxyError(401, E.TOKEN_REVOKED, "the token has been revoked")
    if token.state == schema.TOKEN_PREVIOUS:
        if not _before(now, token.grace_until) or token.grace_until is None:
            raise ProxyError(
                401, E.TOKEN_GRACE_EXPIRED, "the token was replaced and its grace period ended"
            )
    elif token.state != schema.TOKEN_ACTIVE:
        raise ProxyError(401, E.INVALID_TOKEN, "the token is not valid")
    if not _before(now, token.expires_at):
        raise ProxyError(401, E.TOKEN_EXPIRED, "the token has expired")
    if customer is None:
        raise record_invalid()
    if customer.status != schema.ACTIVE and not allow_suspended:
        raise ProxyError(403, E.CUSTOMER_SUSPENDED, "the account is suspended")


def check_address(token: TokenRecord, customer: Customer, source_ip: str | None) -> None:
    """Refuse an address outside the customer's or the key's allowlist (both must allow)."""
    if not (
        address_allowed(source_ip, customer.allowed_cidrs)
        and address_allowed(source_ip, token.allowed_cidrs)
    ):
        raise ProxyError(
            403, E.IP_NOT_ALLOWED, "requests from this address are not allowed for this key"
        )


INVALID_RECORD = object()  # cached marker: the token's item could not be read


class AuthCache:
    """A bounded LRU of token hash -> (expiry, value); value None marks an unknown token.

    The lock only guards the dictionary; it decides nothing about limits.
    """

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[str, tuple[datetime, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, now: datetime) -> tuple[bool, object]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            if now >= entry[0]:
                del self._entries[key]
                return False, None
            self._entries.move_to_end(key)
            return True, entry[1]

    def put(self, key: str, value: object, until: datetime) -> None:
        with self._lock:
            self._entries[key] = (until, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class Authenticator:
    def __init__(
        self, dynamodb_getter, tables, clock: Clock, ttl: float, negative_ttl: float, size: int
    ):
        self._dynamodb = dynamodb_getter
        self.tables = tables
        self.clock = clock
        self.ttl = timedelta(seconds=ttl)
        self.negative_ttl = timedelta(seconds=negative_ttl)
        self.cache = AuthCache(size)

    def _lookup(self, token_hash: str):
        """(token, customer) for a known token; None for an unknown one; INVALID_RECORD for
        a damaged token item. A damaged customer item gives (token, None): the token's
        own state is still checked first, so a revoked token still says so."""
        client = self._dynamodb()
        item = client.get_item(
            TableName=self.tables.tokens, Key={"token_hash": {"S": token_hash}}
        ).get("Item")
        if not item or "customer_id" not in item:
            return None
        try:
            token = parse_token(item)
        except ProxyError:
            return INVALID_RECORD
        customer_item = client.get_item(
            TableName=self.tables.customers, Key={"customer_id": {"S": token.customer_id}}
        ).get("Item")
        if not customer_item:
            return None
        try:
            return token, parse_customer(customer_item)
        except ProxyError:
            return token, None

    def authenticate(
        self, token: str, source_ip: str | None = None, allow_suspended: bool = False
    ) -> Customer:
        token_hash = hash_token(token)
        now = self.clock()
        hit, value = self.cache.get(token_hash, now)
        if not hit:
            value = self._lookup(token_hash)
            # A damaged record is re-read as often as an unknown token: its fix bites soon.
            good = isinstance(value, tuple) and value[1] is not None
            self.cache.put(token_hash, value, now + (self.ttl if good else self.negative_ttl))
        if value is None:
            raise ProxyError(401, E.INVALID_TOKEN, "the token is not valid")
        if value is INVALID_RECORD:
            raise record_invalid()
        record, customer = value
        check_token(record, customer, now, allow_suspended)
        check_address(record, customer, source_ip)
        return for_key(customer, record)
