"""Bearer-token authentication: hash, look up (cached), check state, expiry and customer.

A cold lookup is two eventually consistent ``GetItem`` calls (the token item, then its
customer). The pair is cached per token hash in the warm container for
``auth_cache_ttl`` seconds and an unknown hash for ``negative_cache_ttl``; the cache is an
LRU bounded at ``auth_cache_size`` entries. Expiry and grace instants are checked against
the clock on every request, cached or not, so they bite on time; a revocation, a
suspension or a limit change bites within ``auth_cache_ttl`` (plus DynamoDB's replication
delay, typically under a second).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..core import schema
from ..core.timeutil import Clock, parse_instant
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


@dataclass(frozen=True)
class TokenRecord:
    customer_id: str
    state: str
    expires_at: datetime | None
    grace_until: datetime | None


def _int(item: dict, name: str) -> int | None:
    value = item.get(name)
    if value and "N" in value:
        try:
            return int(value["N"])
        except ValueError:
            return None
    return None


def _instant(item: dict, name: str) -> datetime | None:
    value = item.get(name)
    if value and "S" in value:
        try:
            return parse_instant(value["S"])
        except Exception:  # a corrupt instant fails closed: treated as already past
            return datetime.min.replace(tzinfo=None)
    return None


def parse_customer(item: dict) -> Customer:
    budget = item.get("monthly_budget", {}).get("S")
    allowed = item.get("allowed_models", {})
    models = None
    if "L" in allowed:
        models = frozenset(v["S"] for v in allowed["L"] if "S" in v)
    elif "SS" in allowed:
        models = frozenset(allowed["SS"])
    return Customer(
        customer_id=item["customer_id"]["S"],
        status=item.get("status", {}).get("S", schema.SUSPENDED),
        daily_request_limit=_int(item, "daily_request_limit"),
        monthly_token_limit=_int(item, "monthly_token_limit"),
        requests_per_minute=_int(item, "requests_per_minute"),
        monthly_budget_pico=to_pico(budget) if budget else None,
        allowed_models=models,
    )


def parse_token(item: dict) -> TokenRecord:
    return TokenRecord(
        customer_id=item["customer_id"]["S"],
        state=item.get("state", {}).get("S", schema.TOKEN_REVOKED),
        expires_at=_instant(item, "expires_at"),
        grace_until=_instant(item, "grace_until"),
    )


def _before(now: datetime, limit: datetime | None) -> bool:
    if limit is None:
        return True
    if limit.tzinfo is None:  # the corrupt-instant marker
        return False
    return now < limit


def check_token(token: TokenRecord, customer: Customer, now: datetime) -> None:
    """Refuse a token that is revoked, expired, past its grace, or whose customer is not active."""
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
    if customer.status != schema.ACTIVE:
        raise ProxyError(403, E.CUSTOMER_SUSPENDED, "the account is suspended")


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

    def _lookup(self, token_hash: str) -> tuple[TokenRecord, Customer] | None:
        client = self._dynamodb()
        item = client.get_item(
            TableName=self.tables.tokens, Key={"token_hash": {"S": token_hash}}
        ).get("Item")
        if not item or "customer_id" not in item:
            return None
        token = parse_token(item)
        customer_item = client.get_item(
            TableName=self.tables.customers, Key={"customer_id": {"S": token.customer_id}}
        ).get("Item")
        if not customer_item:
            return None
        return token, parse_customer(customer_item)

    def authenticate(self, token: str) -> Customer:
        token_hash = hash_token(token)
        now = self.clock()
        hit, value = self.cache.get(token_hash, now)
        if not hit:
            value = self._lookup(token_hash)
            self.cache.put(token_hash, value, now + (self.ttl if value else self.negative_ttl))
        if value is None:
            raise ProxyError(401, E.INVALID_TOKEN, "the token is not valid")
        record, customer = value
        check_token(record, customer, now)
        return customer
