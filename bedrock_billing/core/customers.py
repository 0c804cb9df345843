"""Customers and their tokens as data: validation and the rules of token validity.

Pure: the stores read and write items, the proxy and the CLI both ask these functions
whether a token works now, so the two can never disagree.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from .errors import BillingError, InvalidInput, NotFound
from .model_parameters import ModelParameters, read_model_parameters
from .models import normalise_model_id
from .origins import read_origins
from .schema import ACTIVE, SUSPENDED, TOKEN_ACTIVE, TOKEN_PREVIOUS, TOKEN_REVOKED
from .timeutil import parse_instant

# A practical address check (RFC 5322 is too permissive to be useful for invoices):
# one @, a dot-separated domain with a TLD of 2+ letters, no spaces or angle brackets.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}$"
)
UNLIMITED_WORDS = ("unlimited", "none", "off")
_MODEL_ID = re.compile(r"^[A-Za-z0-9._:/*-]{3,200}$")


def validate_email(email: str) -> str:
    value = (email or "").strip()
    if len(value) > 254 or ".." in value or not _EMAIL.match(value):
        raise InvalidInput(f"invalid email {email!r}")
    return value


def validate_name(name: str) -> str:
    value = (name or "").strip()
    if not value:
        raise InvalidInput("name must not be empty")
    if len(value) > 200 or not value.isprintable():
        raise InvalidInput("name must be printable and at most 200 characters")
    return value


_PREFIX = re.compile(r"^[0-9a-f][0-9a-f-]*$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def validate_customer_id(customer_id: str) -> str:
    """A customer id is a UUID in its hyphenated form, rejected before it reaches any store or
    query otherwise; normalised to lower case."""
    if not isinstance(customer_id, str) or not _UUID.match(customer_id.strip()):
        raise InvalidInput(f"invalid customer id {str(customer_id)[:80]!r}: expected a UUID")
    return str(uuid.UUID(customer_id.strip()))


MIN_PREFIX = 4


def customer_id_or_prefix(text: str) -> tuple[str, bool]:
    """``(id, True)`` for a whole customer id; ``(prefix, False)`` for a prefix of one (at
    least MIN_PREFIX hex digits, as the tables show it), checked before any store sees it."""
    try:
        return validate_customer_id(text), True
    except InvalidInput:
        pass
    prefix = str(text).strip().lower().rstrip("…")
    if len(prefix) < MIN_PREFIX or len(prefix) >= 36 or not _PREFIX.match(prefix):
        raise InvalidInput(
            f"invalid customer id {str(text)[:80]!r}: expected a UUID or a unique prefix of "
            f"at least {MIN_PREFIX} characters"
        ) from None
    return prefix, False


def pick_by_prefix(prefix: str, customer_ids: Iterable[str]) -> str:
    """The one id that starts with ``prefix``; NotFound or InvalidInput (ambiguous) else."""
    matches = sorted({c for c in customer_ids if c.startswith(prefix)})
    if not matches:
        raise NotFound(f"no customer with an id starting {prefix}")
    if len(matches) > 1:
        shown = ", ".join(m[: len(prefix) + 4] + "…" for m in matches[:5])
        raise InvalidInput(f"customer id prefix {prefix} is ambiguous: {shown}")
    return matches[0]


def sort_key(customer: dict) -> tuple[str, str]:
    """Customers are listed by name (case-folded), then id: a stable order to page through."""
    return ((customer.get("name") or "").casefold(), customer["customer_id"])


def encode_page_token(key: tuple[str, str]) -> str:
    """An opaque ``--starting-token``: the sort key of the last customer shown."""
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[str, str]:
    import base64
    import binascii
    import json

    try:
        raw = base64.urlsafe_b64decode(token.strip() + "=" * (-len(token.strip()) % 4))
        name, customer_id = json.loads(raw)
        if not isinstance(name, str) or not isinstance(customer_id, str):
            raise ValueError
    except (ValueError, binascii.Error, TypeError, UnicodeDecodeError):
        raise InvalidInput(f"invalid --starting-token {token[:40]!r}") from None
    return name, customer_id


def new_customer_id() -> str:
    return str(uuid.uuid4())


# DynamoDB numbers hold 38 digits, and the proxy compares the budget in pico-units
# (10^-12): bounds far above any real limit keep every stored and compared value in range.
MAX_COUNT_LIMIT = 10**15
MAX_MONEY_LIMIT = Decimal(10**12)


def parse_count_limit(value: str | int | None, what: str) -> int | None:
    """A positive integer limit, or ``None`` for unlimited ('unlimited', 'none', 'off')."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in UNLIMITED_WORDS:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise InvalidInput(f"invalid {what} {value!r}: a positive whole number, or 'unlimited'")
    if int(text) > MAX_COUNT_LIMIT:
        raise InvalidInput(f"invalid {what}: at most {MAX_COUNT_LIMIT}, or 'unlimited'")
    return int(text)


def parse_money_limit(value: str | None, what: str) -> str | None:
    """A positive decimal amount as a canonical string, or ``None`` for unlimited."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in UNLIMITED_WORDS:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(f"invalid {what} {value!r}: an amount such as 250.00") from None
    if not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -2:
        raise InvalidInput(f"invalid {what} {value!r}: a positive amount with at most 2 decimals")
    if amount > MAX_MONEY_LIMIT:
        raise InvalidInput(f"invalid {what}: at most {MAX_MONEY_LIMIT}, or 'unlimited'")
    return f"{amount:.2f}"


def parse_model_list(values: list[str] | str | None) -> list[str] | None:
    """Allowed models: a list (or comma-separated text) of model ids, or None for all.

    Stored as foundation model ids, which is what the proxy compares: an inference profile
    (``us.anthropic...``) or a model ARN given here allows its foundation model."""
    if values is None:
        return None
    items = values.split(",") if isinstance(values, str) else list(values)
    models: list[str] = []
    for raw in items:
        for part in str(raw).split(","):
            part = part.strip()
            if not part:
                continue
            if part.lower() in UNLIMITED_WORDS + ("all", "*"):
                return None
            if not _MODEL_ID.match(part):
                raise InvalidInput(f"invalid model id {part!r}")
            try:
                part = normalise_model_id(part).foundation_model
            except InvalidInput:
                raise InvalidInput(f"invalid model id {part!r}") from None
            if part not in models:
                models.append(part)
    return sorted(models) or None


@dataclass(frozen=True)
class TokenVerdict:
    ok: bool
    code: str  # "ok", "token_revoked", "token_expired", "grace_ended", "customer_suspended"
    message: str


def token_verdict(token: dict, customer_status: str, now: datetime) -> TokenVerdict:
    """Whether a token item (see docs/schema.md) lets its customer in at ``now``."""
    state = token.get("state")
    if state == TOKEN_REVOKED:
        return TokenVerdict(False, "token_revoked", "this token has been revoked")
    expires = token.get("expires_at")
    if expires and now >= parse_instant(expires):
        return TokenVerdict(False, "token_expired", "this token has expired")
    if state == TOKEN_PREVIOUS:
        grace = token.get("grace_until")
        if not grace or now >= parse_instant(grace):
            return TokenVerdict(False, "grace_ended", "this token was rotated and its grace ended")
    elif state != TOKEN_ACTIVE:
        return TokenVerdict(False, "token_revoked", "this token is not active")
    if customer_status != ACTIVE:
        return TokenVerdict(False, "customer_suspended", "this customer is suspended")
    return TokenVerdict(True, "ok", "ok")


def token_display_state(token: dict, now: datetime) -> str:
    """A token's state for people: active, grace (until ...), expired, revoked."""
    verdict = token_verdict(token, ACTIVE, now)
    if verdict.ok:
        return "grace" if token.get("state") == TOKEN_PREVIOUS else "active"
    return {"token_expired": "expired", "grace_ended": "ended"}.get(verdict.code, "revoked")


# ---- Reading stored records strictly (the proxy fails closed on what this refuses)

# The error code the proxy answers with, and the log line carries, when a customer's or a
# token's stored item cannot be read; the deploy's alarm counts log lines with it.
RECORD_INVALID_CODE = "customer_record_invalid"
RECORD_INVALID_METRIC = "CustomerRecordInvalid"  # BedrockBilling namespace, no dimension
COUNT_LIMITS = ("daily_request_limit", "monthly_token_limit", "requests_per_minute")


class InvalidRecord(BillingError):
    """A stored customer or token item that does not follow docs/schema.md (edited by hand
    or by another tool). ``problems`` names each bad field."""

    def __init__(self, what: str, problems: list[str]):
        super().__init__(f"the {what} record is invalid: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class CustomerLimits:
    """A customer item's status and limits, each checked; ``None`` = unlimited."""

    customer_id: str
    status: str
    daily_request_limit: int | None = None
    monthly_token_limit: int | None = None
    requests_per_minute: int | None = None
    monthly_budget: Decimal | None = None
    allowed_models: frozenset[str] | None = None
    allowed_cidrs: tuple[str, ...] | None = None
    allowed_origins: tuple[str, ...] | None = None
    model_parameters: ModelParameters | None = None
    # Application inference profiles made for the customer: (source model id, profile ARN)
    inference_profiles: tuple[tuple[str, str], ...] = ()


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, (int, Decimal)):
        return f"the number {value}"
    return f"a {type(value).__name__}"


def _count_problem(name: str, value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name} is {_kind(value)}: expected a whole number (N)"
    if not 0 <= value <= MAX_COUNT_LIMIT:
        return f"{name} is {value}: expected 0 to {MAX_COUNT_LIMIT}"
    return None


def _budget(value: object) -> tuple[Decimal | None, str | None]:
    shape = 'expected a decimal string (S) such as "250.00"'
    if not isinstance(value, str):
        return None, f"monthly_budget is {_kind(value)}: {shape}"
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        return None, f"monthly_budget is {_kind(value)}: {shape}"
    if not amount.is_finite() or not 0 <= amount <= MAX_MONEY_LIMIT:
        return None, f"monthly_budget is {_kind(value)}: expected 0 to {MAX_MONEY_LIMIT}"
    if amount.as_tuple().exponent < -12:
        return None, f"monthly_budget is {_kind(value)}: at most 12 decimal places"
    return amount, None


def _models(value: object) -> tuple[frozenset[str] | None, str | None]:
    if not isinstance(value, list):
        return None, f"allowed_models is {_kind(value)}: expected a list of model ids (L of S)"
    for model in value:
        if not isinstance(model, str) or not _MODEL_ID.fullmatch(model):
            return None, f"allowed_models holds {_kind(model)}: not a model id"
    return frozenset(value), None


def _profiles(value: object) -> tuple[tuple[tuple[str, str], ...], str | None]:
    from .models import is_application_profile_arn

    shape = "expected a map of model id to application inference profile ARN (M of S)"
    if not isinstance(value, dict):
        return (), f"inference_profiles is {_kind(value)}: {shape}"
    for source, arn in value.items():
        if not _MODEL_ID.fullmatch(str(source)) or not is_application_profile_arn(arn):
            return (), f"inference_profiles holds {_kind(arn)}: {shape}"
    return tuple(sorted(value.items())), None


def read_customer_record(item: dict) -> CustomerLimits:
    """The status and limits of a customer item (as ``core.items.from_item`` reads it).

    Strict: a limit stored as a string or a fraction, ``allowed_models`` not a list, a
    budget that is not a decimal string or an unknown status raise :class:`InvalidRecord`
    naming every bad field. An absent limit is unlimited, as the CLI writes it."""
    problems: list[str] = []
    customer_id = item.get("customer_id")
    if not isinstance(customer_id, str) or not customer_id:
        problems.append("customer_id is missing or not a string")
    status = item.get("status")
    if status not in (ACTIVE, SUSPENDED):
        problems.append(f"status is {_kind(status)}: expected {ACTIVE!r} or {SUSPENDED!r}")
    counts: dict[str, int | None] = {}
    for name in COUNT_LIMITS:
        value = item.get(name)
        problem = None if value is None else _count_problem(name, value)
        if problem:
            problems.append(problem)
        counts[name] = value if value is not None and problem is None else None
    budget = models = None
    if item.get("monthly_budget") is not None:
        budget, problem = _budget(item["monthly_budget"])
        problems += [problem] if problem else []
    if item.get("allowed_models") is not None:
        models, problem = _models(item["allowed_models"])
        problems += [problem] if problem else []
    cidrs, problem = _cidrs(item.get("allowed_cidrs"))
    problems += [problem] if problem else []
    origins, problem = read_origins(item.get("allowed_origins"))
    problems += [problem] if problem else []
    parameters, problem = read_model_parameters(item.get("model_parameters"))
    problems += [problem] if problem else []
    profiles: tuple = ()
    if item.get("inference_profiles") is not None:
        profiles, problem = _profiles(item["inference_profiles"])
        problems += [problem] if problem else []
    if problems:
        raise InvalidRecord("customer", problems)
    return CustomerLimits(
        customer_id=str(customer_id),
        status=str(status),
        monthly_budget=budget,
        allowed_models=models,
        allowed_cidrs=cidrs,
        allowed_origins=origins,
        model_parameters=parameters,
        inference_profiles=profiles,
        **counts,
    )


@dataclass(frozen=True)
class TokenRecord:
    """A token item: its owner, state and instants, and the key it belongs to (docs/schema.md,
    "Named keys"): the key's id and name, the test flag, and the key's own limits, which
    narrow the customer's. A token item written before keys existed has ``key_id`` None."""

    customer_id: str
    state: str
    expires_at: datetime | None
    grace_until: datetime | None
    key_id: str | None = None
    key_name: str | None = None
    test: bool = False
    daily_request_limit: int | None = None
    allowed_models: frozenset[str] | None = None
    allowed_cidrs: tuple[str, ...] | None = None


def read_token_record(item: dict) -> TokenRecord:
    """The owner, state and instants of a token item; strict like the customer's."""
    problems: list[str] = []
    customer_id = item.get("customer_id")
    if not isinstance(customer_id, str) or not customer_id:
        problems.append("customer_id is missing or not a string")
    state = item.get("state")
    if state not in (TOKEN_ACTIVE, TOKEN_PREVIOUS, TOKEN_REVOKED):
        problems.append(f"state is {_kind(state)}: expected active, previous or revoked")
    instants: dict[str, datetime | None] = {}
    for name in ("expires_at", "grace_until"):
        value = item.get(name)
        instants[name] = None
        if value is None:
            continue
        try:
            instants[name] = parse_instant(value) if isinstance(value, str) else None
        except (InvalidInput, ValueError, OverflowError):
            pass
        if instants[name] is None:
            problems.append(f"{name} is {_kind(value)}: expected an ISO 8601 instant")
    key: dict = {}
    for name in ("key_id", "key_name"):
        value = item.get(name)
        if value is not None and not (isinstance(value, str) and value and len(value) <= 200):
            problems.append(f"{name} is {_kind(value)}: expected a non-empty string")
        key[name] = value if isinstance(value, str) else None
    test = item.get("test", False)
    if not isinstance(test, bool):
        problems.append(f"test is {_kind(test)}: expected a boolean (BOOL)")
    daily = item.get("daily_request_limit")
    problem = None if daily is None else _count_problem("daily_request_limit", daily)
    problems += [problem] if problem else []
    models = None
    if item.get("allowed_models") is not None:
        models, problem = _models(item["allowed_models"])
        problems += [problem] if problem else []
    cidrs, problem = _cidrs(item.get("allowed_cidrs"))
    problems += [problem] if problem else []
    if problems:
        raise InvalidRecord("token", problems)
    return TokenRecord(
        str(customer_id),
        str(state),
        **instants,
        **key,
        test=bool(test),
        daily_request_limit=daily,
        allowed_models=models,
        allowed_cidrs=cidrs,
    )


# ---- IP allowlists: CIDRs (IPv4 and IPv6), per customer and per key

MAX_CIDRS = 100


def parse_cidr_list(values: list[str] | str | None) -> list[str] | None:
    """An allowlist given by an operator: CIDRs or single addresses (comma-separated text or
    a list), normalised (``10.0.0.7/8`` is refused: host bits set); None or 'any' = no list."""
    if values is None:
        return None
    items = values.split(",") if isinstance(values, str) else list(values)
    out: list[str] = []
    for raw in items:
        for part in str(raw).split(","):
            part = part.strip()
            if not part:
                continue
            if part.lower() in UNLIMITED_WORDS + ("any", "all"):
                return None
            try:
                network = ipaddress.ip_network(part, strict=True)
            except ValueError:
                raise InvalidInput(
                    f"invalid CIDR {part[:60]!r}: e.g. 203.0.113.0/24 or 2001:db8::/32"
                ) from None
            if str(network) not in out:
                out.append(str(network))
    if len(out) > MAX_CIDRS:
        raise InvalidInput(f"at most {MAX_CIDRS} CIDRs per allowlist")
    return out or None


def _cidrs(value: object) -> tuple[tuple[str, ...] | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, list) or not value:
        return None, f"allowed_cidrs is {_kind(value)}: expected a list of CIDRs (L of S)"
    for cidr in value:
        try:
            ipaddress.ip_network(cidr, strict=True)
        except (TypeError, ValueError):
            return None, f"allowed_cidrs holds {_kind(cidr)}: not a CIDR"
    return tuple(value), None


def address_allowed(address: str | None, cidrs: tuple[str, ...] | list[str] | None) -> bool:
    """Whether ``address`` (API Gateway's source IP) is in one of ``cidrs``; no list = any
    address; a list and no (or an unreadable) address = refused (fail closed)."""
    if cidrs is None:
        return True
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return False
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped  # ::ffff:203.0.113.7 is 203.0.113.7
    for cidr in cidrs:
        network = ipaddress.ip_network(cidr)
        if ip.version == network.version and ip in network:
            return True
    return False
