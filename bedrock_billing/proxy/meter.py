"""Admission and usage counters in the usage table.

Admission is decided by DynamoDB, never by the proxy: one conditional ``UpdateItem`` on the
customer's monthly meter (``METER#YYYY-MM``) adds 1 to today's ``dNN`` only if every limit
that is set still holds (today's admitted requests, the month's tokens, the month's spend).
Concurrent requests are serialised by DynamoDB on that item, so they can never pass a
limit together. Requests per minute, when set, cost one more conditional ``UpdateItem`` on
a ``MIN#`` item that DynamoDB's TTL removes.

After Bedrock answers, one ``TransactWriteItems`` of unconditional ``ADD``s adds the usage
to the meter (tokens, spend) and to the ``DAY#date#model`` counters. Token and budget
limits are checked at admission against usage recorded so far: a request admitted just
under the limit can carry the month past it. The overshoot is bounded by the requests in
flight at that moment, each at most its own input plus ``max_tokens`` (docs/proxy.md).

Named keys (docs/schema.md): a key's day counters (``KEY#<key id>#date``) ride in the same
transaction as a third item, so per-key usage costs no extra call. A key with its own daily
limit costs one more conditional ``UpdateItem`` at admission (``admitted`` on that item),
taken before the customer's meter and given back if the meter refuses; the customer's
limits still hold across all its keys on the one meter item. A test key never touches the
meter: one conditional ``UpdateItem`` on its own minute item, and one counter after.

A request whose Bedrock call fails is counted in ``errors`` and never billed. It is given
back its admission (``dNN`` - 1) unless the customer's own request caused the failure
(Bedrock's 400 or 404, ``keeps_daily_slot``): those keep counting against the daily limit,
so repeating a bad request cannot reach Bedrock without bound.

Every write is safe to repeat when its answer is lost (the write landed, the connection
dropped before the answer came back), because both the proxy's own retries (``_retry``) and
botocore's resend it:

- the usage transaction carries a ``ClientRequestToken`` derived from the request id and
  the write's kind, the same on every attempt: DynamoDB applies it once (within 10 minutes);
- the error transaction (count the error, give the daily slot back) also puts a per-request
  marker item ``ERR#<request id>`` with ``attribute_not_exists``: a repeat fails on the
  marker and changes nothing, so a slot is never given back twice;
- the admission, requests-per-minute, key-admission, test-key and refused-count
  ``UpdateItem``s are ``ADD``s that a
  condition cannot make idempotent without a marker item per request (a second write
  unit on the hot path): they are never repeated when they may have landed (a lost answer,
  a 5xx), only when DynamoDB surely did not apply them (throttling, no connection).
  ``guard_writes`` tells botocore so; docs/decisions.md has the reasoning.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from ..core import schema
from ..core.models import ModelRef
from ..core.timeutil import Period, epoch_seconds, iso_z
from . import errors as E
from .auth import Customer
from .errors import ProxyError
from .prices import ModelPrice
from .usage import Usage

MINUTE_ITEM_LIFETIME = 300  # seconds past its minute before DynamoDB's TTL may remove it
ERROR_MARKER_LIFETIME = 86400  # seconds an ERR# marker is kept (its repeats come in seconds)
WRITE_ATTEMPTS = 3
USAGE_WRITE, ERROR_WRITE = "use", "err"  # the kinds of a request's outcome writes
# DynamoDB's answers that say the write was not applied (throttled, refused): safe to
# repeat any write after these. A 5xx or a lost connection may hide an applied write.
NOT_APPLIED_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)


class CounterWriteFailed(Exception):
    """The usage could not be written after retries (the caller logs and emits a metric)."""


@dataclass(frozen=True)
class Admission:
    customer_id: str
    model: ModelRef
    admitted_at: datetime
    price: ModelPrice | None
    # The request's id (API Gateway's, unique per request): names its idempotent writes.
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    key_id: str | None = None
    test: bool = False
    key_counted: bool = False  # the key's own daily admission was taken (give it back on error)

    def write_token(self, kind: str) -> str:
        """The ``ClientRequestToken`` of this request's ``kind`` of write: the same on every
        attempt, different for every request and kind; at most 36 characters."""
        seed = f"{self.request_id}|{self.customer_id}|{iso_z(self.admitted_at)}|{kind}"
        return f"{kind}-{hashlib.sha256(seed.encode()).hexdigest()[:32]}"[:36]


def _n(value: int) -> dict:
    return {"N": str(value)}


def _seconds_until(now: datetime, then: datetime) -> int:
    return max(1, int((then - now).total_seconds() + 0.999))


def _next_day(now: datetime) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=now.tzinfo) + timedelta(days=1)


class Meter:
    def __init__(self, dynamodb_getter, table: str, sleep=time.sleep, test_rpm: int = 10):
        self._dynamodb = dynamodb_getter
        self.table = table
        self.sleep = sleep
        self.test_rpm = test_rpm

    # ---- admission

    def admit(
        self,
        customer: Customer,
        model: ModelRef,
        price: ModelPrice | None,
        now: datetime,
        request_id: str | None = None,
    ) -> Admission:
        if customer.allowed_models is not None and model.foundation_model not in (
            customer.allowed_models
        ):
            raise ProxyError(
                403,
                E.MODEL_NOT_ALLOWED,
                "this model is not allowed for the account",
                limit="allowed_models",
            )
        if customer.monthly_budget_pico is not None and price is None:
            # Without a price the budget could not be metered: refuse rather than overspend.
            raise ProxyError(
                403,
                E.MODEL_NOT_PRICED,
                "this model has no price configured and the account has a budget",
                limit="monthly_budget",
            )
        if customer.test:
            self._admit_test(customer, now)
            return Admission(
                customer.customer_id, model, now, None, key_id=customer.key_id, test=True,
                **({"request_id": request_id} if request_id else {}),
            )
        self._refuse_zero_limits(customer, now)
        counted_minute = counted_key = False
        try:
            if customer.requests_per_minute is not None:
                self._admit_minute(customer, now)
                counted_minute = True
            if customer.key_daily_limit is not None and customer.key_id:
                self._admit_key(customer, now)
                counted_key = True
            self._admit_meter(customer, now)
        except ProxyError:
            if counted_minute:
                self._undo_minute(customer.customer_id, now)
            if counted_key:
                self._undo_key(customer, now)
            raise
        return Admission(
            customer.customer_id,
            model,
            now,
            price,
            key_id=customer.key_id,
            key_counted=counted_key,
            **({"request_id": request_id} if request_id else {}),
        )

    def _admit_test(self, customer: Customer, now: datetime) -> None:
        """A test key's own low rate limit: one conditional ADD on its minute item."""
        expires = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        try:
            self._dynamodb().update_item(
                TableName=self.table,
                Key=self._key(customer.customer_id, schema.key_minute_key(customer.key_id, now)),
                UpdateExpression="ADD #n :one SET #ttl = :ttl",
                ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
                ExpressionAttributeNames={"#n": "n", "#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":one": _n(1),
                    ":limit": _n(self.test_rpm),
                    ":ttl": _n(epoch_seconds(expires) + MINUTE_ITEM_LIFETIME),
                },
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise ProxyError(
                    429,
                    E.TEST_KEY_LIMIT,
                    f"test keys answer at most {self.test_rpm} requests per minute",
                    retry_after=_seconds_until(now, expires),
                ) from None
            raise

    def _admit_key(self, customer: Customer, now: datetime) -> None:
        """The key's own daily limit: one conditional ADD on its KEY# day item."""
        try:
            self._dynamodb().update_item(
                TableName=self.table,
                Key=self._key(customer.customer_id, schema.key_day_key(customer.key_id, now)),
                UpdateExpression="ADD #a :one",
                ConditionExpression="attribute_not_exists(#a) OR #a < :limit",
                ExpressionAttributeNames={"#a": "admitted"},
                ExpressionAttributeValues={":one": _n(1), ":limit": _n(customer.key_daily_limit)},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                end = _next_day(now)
                raise ProxyError(
                    429,
                    E.KEY_DAILY_LIMIT,
                    f"this key's daily request limit reached; it resets at {iso_z(end)}",
                    limit="key_daily_request_limit",
                    retry_after=_seconds_until(now, end),
                ) from None
            raise

    def _undo_key(self, customer: Customer, now: datetime) -> None:
        try:
            self._dynamodb().update_item(
                TableName=self.table,
                Key=self._key(customer.customer_id, schema.key_day_key(customer.key_id, now)),
                UpdateExpression="ADD #a :minus",
                ExpressionAttributeNames={"#a": "admitted"},
                ExpressionAttributeValues={":minus": _n(-1)},
            )
        except (ClientError, BotoCoreError):
            pass  # at worst the key over-counts one refused request: stricter, not looser

    def admit_free(self, customer: Customer, now: datetime) -> None:
        """A call Bedrock does not bill (CountTokens): it takes a requests-per-minute slot
        where the customer has that limit, and nothing else."""
        if customer.requests_per_minute is not None:
            if customer.requests_per_minute <= 0:
                raise self._limit_error("requests_per_minute", now)
            self._admit_minute(customer, now)

    def _refuse_zero_limits(self, customer: Customer, now: datetime) -> None:
        # A limit of 0 would pass "attribute_not_exists" on an empty meter: refuse here.
        if customer.daily_request_limit is not None and customer.daily_request_limit <= 0:
            raise self._limit_error("daily_request_limit", now)
        if customer.key_daily_limit is not None and customer.key_daily_limit <= 0:
            raise ProxyError(
                429,
                E.KEY_DAILY_LIMIT,
                "this key's daily request limit is 0",
                limit="key_daily_request_limit",
            )
        if customer.requests_per_minute is not None and customer.requests_per_minute <= 0:
            raise self._limit_error("requests_per_minute", now)
        if customer.monthly_token_limit is not None and customer.monthly_token_limit <= 0:
            raise self._limit_error("monthly_token_limit", now)
        if customer.monthly_budget_pico is not None and customer.monthly_budget_pico <= 0:
            raise self._limit_error("monthly_budget", now)

    @staticmethod
    def _limit_error(limit: str, now: datetime) -> ProxyError:
        """The refusal at ``limit``; its message says which limit and when it resets."""
        if limit == "requests_per_minute":
            end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
            code, what = E.MINUTE_LIMIT, "requests-per-minute limit reached"
        elif limit == "daily_request_limit":
            end = _next_day(now)
            code, what = E.DAILY_LIMIT, "daily request limit reached"
        else:
            end = Period.of(now).end
            code, what = (
                (E.TOKEN_LIMIT, "monthly token limit reached")
                if limit == "monthly_token_limit"
                else (E.BUDGET_LIMIT, "monthly budget reached")
            )
        return ProxyError(
            429,
            code,
            f"{what}; it resets at {iso_z(end)}",
            limit=limit,
            retry_after=_seconds_until(now, end),
        )

    def _admit_minute(self, customer: Customer, now: datetime) -> None:
        expires = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        try:
            self._dynamodb().update_item(
                TableName=self.table,
                Key=self._key(customer.customer_id, schema.minute_key(now)),
                UpdateExpression="ADD #n :one SET #ttl = :ttl",
                ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
                ExpressionAttributeNames={"#n": "n", "#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":one": _n(1),
                    ":limit": _n(customer.requests_per_minute),
                    ":ttl": _n(epoch_seconds(expires) + MINUTE_ITEM_LIFETIME),
                },
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise self._limit_error("requests_per_minute", now) from None
            raise

    def _undo_minute(self, customer_id: str, now: datetime) -> None:
        # The meter refused after the minute counted this request: give the slot back.
        try:
            self._dynamodb().update_item(
                TableName=self.table,
                Key=self._key(customer_id, schema.minute_key(now)),
                UpdateExpression="ADD #n :minus",
                ExpressionAttributeNames={"#n": "n"},
                ExpressionAttributeValues={":minus": _n(-1)},
            )
        except (ClientError, BotoCoreError):
            pass  # at worst the minute over-counts one refused request: stricter, not looser

    def _admit_meter(self, customer: Customer, now: datetime) -> None:
        day = schema.day_attribute(now)
        names = {"#d": day}
        values = {":one": _n(1)}
        conditions = []
        checks = (
            ("daily_request_limit", "#d", customer.daily_request_limit),
            ("monthly_token_limit", "#tokens", customer.monthly_token_limit),
            ("monthly_budget", "#spend", customer.monthly_budget_pico),
        )
        for limit, attr, value in checks:
            if value is None:
                continue
            if attr != "#d":
                names[attr] = attr[1:]
            values[f":{limit}"] = _n(value)
            conditions.append(f"(attribute_not_exists({attr}) OR {attr} < :{limit})")
        request = {
            "TableName": self.table,
            "Key": self._key(customer.customer_id, schema.meter_key(now)),
            "UpdateExpression": "ADD #d :one",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if conditions:
            request["ConditionExpression"] = " AND ".join(conditions)
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            self._dynamodb().update_item(**request)
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            raise self._limit_error(self._which_limit(customer, exc, day), now) from None

    @staticmethod
    def _which_limit(customer: Customer, exc: ClientError, day: str) -> str:
        item = exc.response.get("Item") or {}

        def value(name: str) -> int:
            try:
                return int(item.get(name, {}).get("N", "0"))
            except ValueError:
                return 0

        if customer.daily_request_limit is not None and value(day) >= customer.daily_request_limit:
            return "daily_request_limit"
        if (
            customer.monthly_token_limit is not None
            and value("tokens") >= customer.monthly_token_limit
        ):
            return "monthly_token_limit"
        if customer.monthly_budget_pico is not None and value("spend") >= (
            customer.monthly_budget_pico
        ):
            return "monthly_budget"
        # Without the old item (an older DynamoDB answer) name the first limit that is set.
        for limit, attr in (
            ("daily_request_limit", "daily_request_limit"),
            ("monthly_token_limit", "monthly_token_limit"),
            ("monthly_budget", "monthly_budget_pico"),
        ):
            if getattr(customer, attr) is not None:
                return limit
        return "daily_request_limit"

    # ---- after the call

    def record_success(self, admission: Admission, usage: Usage) -> None:
        if admission.test:
            self._retry(
                lambda: self._add_key(admission, {"test_requests": 1}), idempotent=False
            )
            return
        spend = admission.price.cost(usage) if admission.price else 0
        day = admission.admitted_at
        key_counts = {
            "requests": 1,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_input_tokens": usage.cache_read_input_tokens,
            "cache_write_input_tokens": usage.cache_write_input_tokens,
        }
        self._transact(
            admission.customer_id,
            "ADD #tokens :tokens, #spend :spend",
            {"#tokens": "tokens", "#spend": "spend"},
            {":tokens": _n(usage.token_count), ":spend": _n(spend)},
            schema.day_key(day, admission.model.foundation_model),
            {
                "requests": 1,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_read_input_tokens": usage.cache_read_input_tokens,
                "cache_write_input_tokens": usage.cache_write_input_tokens,
                "estimated": int(usage.estimated),
            },
            day,
            self._key_update(admission, key_counts),
            token=admission.write_token(USAGE_WRITE),
        )

    def _key_update(self, admission: Admission, counts: dict[str, int]) -> dict | None:
        """The KEY# day item's ADDs, as a transaction item (None: a token without a key)."""
        if not admission.key_id:
            return None
        counts = {k: v for k, v in counts.items() if v}
        names = {f"#k{i}": name for i, name in enumerate(counts)}
        values = {f":k{i}": _n(value) for i, value in enumerate(counts.values())}
        return {
            "TableName": self.table,
            "Key": self._key(
                admission.customer_id, schema.key_day_key(admission.key_id, admission.admitted_at)
            ),
            "UpdateExpression": "ADD " + ", ".join(f"#k{i} :k{i}" for i in range(len(counts))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def _add_key(self, admission: Admission, counts: dict[str, int]) -> None:
        update = self._key_update(admission, counts)
        if update is not None:
            self._dynamodb().update_item(**update)

    def record_error(self, admission: Admission, error: BaseException | None = None) -> None:
        """The call failed: count the error and, unless the customer's own request caused it
        (``keeps_daily_slot``), give the daily admission back. Once per request: the
        transaction puts the request's ``ERR#`` marker only if it is absent, so a repeat
        after a lost answer changes nothing."""
        day = admission.admitted_at
        if admission.test:
            return  # the test responder does not fail after admission; nothing is billed
        give_back = error is None or not keeps_daily_slot(error)
        marker_sk = schema.error_marker_key(admission.request_id)
        marker = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **self._key(admission.customer_id, marker_sk),
                    "ttl": _n(epoch_seconds(day) + ERROR_MARKER_LIFETIME),
                },
                "ConditionExpression": "attribute_not_exists(sk)",
            }
        }
        # The key's own daily slot goes back with the customer's (same rule, same marker).
        key_counts = {"errors": 1, "admitted": -1 if admission.key_counted and give_back else 0}
        self._transact(
            admission.customer_id,
            "ADD #d :minus" if give_back else None,
            {"#d": schema.day_attribute(day)},
            {":minus": _n(-1)},
            schema.day_key(day, admission.model.foundation_model),
            {"errors": 1},
            day,
            self._key_update(admission, key_counts),
            token=admission.write_token(ERROR_WRITE),
            marker=marker,
        )

    def record_refused(self, customer_id: str, foundation_model: str, now: datetime) -> None:
        """A refusal at a limit or model check: one unconditional ADD on the DAY item, not
        repeated once it may have landed (the log line counts the refusal either way)."""
        self._retry(
            lambda: self._dynamodb().update_item(
                TableName=self.table,
                Key=self._key(customer_id, schema.day_key(now, foundation_model)),
                UpdateExpression="ADD refused :one",
                ExpressionAttributeValues={":one": _n(1)},
            ),
            idempotent=False,
        )

    def _transact(
        self,
        customer_id,
        meter_update,
        meter_names,
        meter_values,
        day_sk,
        day_counters: dict[str, int],
        day: datetime,
        key_update: dict | None = None,
        *,
        token: str,
        marker: dict | None = None,
    ) -> None:
        """One transaction: the marker (if any), the meter's update (if any), the DAY
        counters and the key's day counters (if any), under ``token`` on every attempt."""
        counters = {k: v for k, v in day_counters.items() if v or k in ("requests", "errors")}
        day_names = {f"#c{i}": name for i, name in enumerate(counters)}
        day_values = {f":c{i}": _n(value) for i, value in enumerate(counters.values())}
        day_update = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counters)))
        items = [marker] if marker else []
        if meter_update:
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": self._key(customer_id, schema.meter_key(day)),
                        "UpdateExpression": meter_update,
                        "ExpressionAttributeNames": meter_names,
                        "ExpressionAttributeValues": meter_values,
                    }
                }
            )
        items.append(
            {
                "Update": {
                    "TableName": self.table,
                    "Key": self._key(customer_id, day_sk),
                    "UpdateExpression": day_update,
                    "ExpressionAttributeNames": day_names,
                    "ExpressionAttributeValues": day_values,
                }
            }
        )
        if key_update is not None:
            items.append({"Update": key_update})
        self._retry(
            lambda: self._dynamodb().transact_write_items(
                TransactItems=items, ClientRequestToken=token
            ),
            done=_marker_exists if marker else None,
        )

    def _retry(self, write, *, idempotent: bool = True, done=None) -> None:
        """``write`` until it succeeds, up to ``WRITE_ATTEMPTS`` times. botocore retries
        throttling and 5xx underneath; this loop also covers a cancelled transaction (a
        conflict with a concurrent one). ``done(exc)``: the failure says an earlier attempt
        already landed. A write that is not ``idempotent`` is repeated only after an answer
        that says it was not applied."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                write()
                return
            except (ClientError, BotoCoreError) as exc:
                if done is not None and done(exc):
                    return
                if attempt == WRITE_ATTEMPTS - 1 or not (idempotent or not_applied(exc)):
                    raise CounterWriteFailed(type(exc).__name__) from exc
                self.sleep(0.05 * (2**attempt))

    @staticmethod
    def _key(customer_id: str, sk: str) -> dict:
        return {"customer_id": {"S": customer_id}, "sk": {"S": sk}}


# Failures the customer's request caused: Bedrock's ValidationException (400, or botocore
# refusing the parameters) and ResourceNotFoundException (404: no such model). They keep
# their daily slot, so a client repeating a bad request is bounded by its daily limit.
# Everything else is the operator's or AWS's (403 model access, 429 quota, 5xx, timeouts,
# broken streams): given back. Neither is billed (docs/proxy.md, "Limits").
CUSTOMER_FAULT_STATUSES = (400, 404)


def keeps_daily_slot(error: BaseException) -> bool:
    from .bedrock import map_error  # the one mapping of Bedrock's errors to statuses

    mapped = error if isinstance(error, ProxyError) else map_error(error)
    return mapped.status in CUSTOMER_FAULT_STATUSES


def _code(exc: ClientError) -> str:
    return str((exc.response.get("Error") or {}).get("Code", ""))


def not_applied(exc: BaseException) -> bool:
    """DynamoDB surely did not apply the write: it said so (throttled, refused with a 4xx),
    or the request never left (no connection). A 5xx, a read timeout or a dropped
    connection may hide a write that landed."""
    if isinstance(exc, ClientError):
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
        return _code(exc) in NOT_APPLIED_CODES or 400 <= status < 500
    return isinstance(exc, EndpointConnectionError)


def _marker_exists(exc: BaseException) -> bool:
    """A cancelled error transaction whose first item, the request's marker, already
    existed: an earlier attempt landed."""
    if not isinstance(exc, ClientError) or _code(exc) != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or []
    return bool(reasons) and (reasons[0] or {}).get("Code") == "ConditionalCheckFailed"


def _no_retry_if_it_may_have_landed(response=None, caught_exception=None, **_):
    """botocore's ``needs-retry`` for the proxy's ``UpdateItem``s (all ``ADD``s): False
    (do not retry) when the write may have landed; None leaves the decision to botocore."""
    if caught_exception is not None:
        return None if not_applied(caught_exception) else False
    if response is not None and getattr(response[0], "status_code", 200) >= 500:
        return False
    return None


def guard_writes(client) -> None:
    """Stop botocore from repeating the proxy's non-idempotent ``UpdateItem``s after an
    answer that may hide an applied write. Runs before botocore's own retry handler (the
    most specific event is called first, and this one is registered first); a handler's
    False means "no retry" (botocore.endpoint.Endpoint._needs_retry)."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None:  # a stand-in client without botocore's events
        return
    events.register_first(
        "needs-retry.dynamodb.UpdateItem",
        _no_retry_if_it_may_have_landed,
        unique_id="bedrock-billing-no-blind-retry",
    )
