"""The DynamoDB schema: table names, key shapes and item attribute names, in one place.

Shared by the stores (CLI side), the proxy and the deploy template, so every writer and
reader agrees. docs/schema.md explains each item, its size and its write cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

DEFAULT_STAGE = "prod"
DEFAULT_PREFIX = "bedrock-billing"

# Logical table name -> (partition key, sort key or None)
TABLE_KEYS: dict[str, tuple[str, str | None]] = {
    "customers": ("customer_id", None),
    "tokens": ("token_hash", None),
    "usage": ("customer_id", "sk"),
    "invoices": ("customer_id", "sk"),
}
TTL_ATTRIBUTE = {"tokens": "ttl", "usage": "ttl"}


@dataclass(frozen=True)
class TableNames:
    """Physical table names of one installation: ``{prefix}-{stage}-{table}``."""

    customers: str
    tokens: str
    usage: str
    invoices: str

    @classmethod
    def for_stage(cls, stage: str = DEFAULT_STAGE, prefix: str = DEFAULT_PREFIX) -> TableNames:
        base = f"{prefix}-{stage}" if prefix else stage
        return cls(**{name: f"{base}-{name}" for name in TABLE_KEYS})

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in TABLE_KEYS}


# Customer status values
ACTIVE = "active"
SUSPENDED = "suspended"

# Token states. "previous" is the old token after a rotation, valid until grace_until.
TOKEN_ACTIVE = "active"
TOKEN_PREVIOUS = "previous"
TOKEN_REVOKED = "revoked"

# Named keys (docs/schema.md, "Named keys"). A key is the token item(s) sharing a key_id (the
# current token and, during a rotation's grace, the previous one); the customer item's
# ``keys`` map lists them. The customer's own token (create / update-token) is its default key.
DEFAULT_KEY_ID = "default"
KEY_ATTRIBUTES = (
    "key_id",
    "key_name",
    "test",
    "daily_request_limit",
    "allowed_models",
    "allowed_cidrs",
)  # copied from a key's token item to its rotated successor

# Limits as stored on the customer item; an absent attribute means unlimited.
LIMIT_ATTRIBUTES = (
    "daily_request_limit",  # int: admitted requests per UTC day
    "monthly_token_limit",  # int: input + output + cache tokens per UTC month
    "requests_per_minute",  # int: admitted requests per fixed UTC minute
    "monthly_budget",  # decimal string, currency units: estimated spend per month
    "allowed_models",  # list of foundation model ids (normalised); absent = all
    "allowed_cidrs",  # list of CIDRs the proxy accepts requests from; absent = any address
    "allowed_origins",  # list of browser origins (CORS); absent = the deployment's list
)

# Usage table sort keys. Day items sort by date so a period is one key-range Query.
METER_PREFIX = "METER#"  # METER#YYYY-MM: the admission meter of one month
DAY_PREFIX = "DAY#"  # DAY#YYYY-MM-DD#<foundation model id>: counters of one day and model
MINUTE_PREFIX = "MIN#"  # MIN#YYYY-MM-DDTHH:MM: requests-per-minute window (TTL'd)
KEY_PREFIX = "KEY#"  # KEY#<key id>#YYYY-MM-DD: one key's counters of one day (and its admission)
TEST_MINUTE_PREFIX = "TMIN#"  # TMIN#<key id>#YYYY-MM-DDTHH:MM: a test key's minute (TTL'd)
ERROR_MARKER_PREFIX = "ERR#"  # ERR#<request id>: this request's error was recorded (TTL'd)

# Counter attributes of a KEY# item: the DAY# counters summed over models, plus ``admitted``
# (the key's own daily admissions, checked only for a key with a daily limit) and
# ``test_requests`` (answered by the test responder: never billed).
KEY_COUNTERS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "errors",
    "admitted",
    "test_requests",
)

# Counter attributes of a DAY# item (all integers, added with ADD).
DAY_COUNTERS = (
    "requests",  # billable: Bedrock answered with success
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "refused",  # refused by the proxy at a limit or model check (not billed)
    "errors",  # admitted, but Bedrock or the proxy failed (not billed)
    "estimated",  # billable requests whose usage had to be estimated
)

# Invoices table sort keys.
INVOICE_PREFIX = "INVOICE#"  # INVOICE#YYYY-MM[#rNN]: a finalized invoice (and its revisions)
CREDIT_NOTE_PREFIX = "CREDITNOTE#"  # CREDITNOTE#YYYY-MM[#rNN]: voids that invoice revision
GRANT_PREFIX = "GRANT#"  # GRANT#<grant id>: a prepaid credit grant


def meter_key(day: date | datetime) -> str:
    return f"{METER_PREFIX}{day.year:04d}-{day.month:02d}"


def day_attribute(day: date | datetime) -> str:
    """The meter attribute counting one day's admitted requests: ``d01`` .. ``d31``."""
    return f"d{day.day:02d}"


def day_key(day: date | datetime, model: str) -> str:
    return f"{DAY_PREFIX}{day.year:04d}-{day.month:02d}-{day.day:02d}#{model}"


def day_range(first: date, last: date) -> tuple[str, str]:
    """Inclusive sort-key bounds covering every DAY# item from ``first`` to ``last``."""
    return f"{DAY_PREFIX}{first.isoformat()}#", f"{DAY_PREFIX}{last.isoformat()}#\uffff"


def parse_day_key(sk: str) -> tuple[date, str]:
    rest = sk[len(DAY_PREFIX) :]
    day, _, model = rest.partition("#")
    return date.fromisoformat(day), model


def minute_key(instant: datetime) -> str:
    return f"{MINUTE_PREFIX}{instant.strftime('%Y-%m-%dT%H:%M')}"


def key_day_key(key_id: str, day: date | datetime) -> str:
    return f"{KEY_PREFIX}{key_id}#{day.year:04d}-{day.month:02d}-{day.day:02d}"


def parse_key_day_key(sk: str) -> tuple[str, date]:
    key_id, _, day = sk[len(KEY_PREFIX) :].rpartition("#")
    return key_id, date.fromisoformat(day)


def key_minute_key(key_id: str, instant: datetime) -> str:
    return f"{TEST_MINUTE_PREFIX}{key_id}#{instant.strftime('%Y-%m-%dT%H:%M')}"


def error_marker_key(request_id: str) -> str:
    return f"{ERROR_MARKER_PREFIX}{request_id}"


def _revision_suffix(revision: int) -> str:
    # Revision 1 has no suffix, so it sorts first: INVOICE#2026-10 < INVOICE#2026-10#r02.
    return "" if revision == 1 else f"#r{revision:02d}"


def invoice_key(period: str, revision: int = 1) -> str:
    return f"{INVOICE_PREFIX}{period}{_revision_suffix(revision)}"


def credit_note_key(period: str, revision: int = 1) -> str:
    return f"{CREDIT_NOTE_PREFIX}{period}{_revision_suffix(revision)}"


def grant_key(grant_id: str) -> str:
    return f"{GRANT_PREFIX}{grant_id}"


# ---- Names of the other resources of one installation (deploy creates them; the sandbox
# mimics them; usage and reconcile find them without configuration).


def resource_base(stage: str = DEFAULT_STAGE, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}-{stage}" if prefix else stage


def log_bucket_name(stage: str, prefix: str, account_id: str, region: str) -> str:
    """The usage-log bucket: S3 names are global, so the account and region are in it."""
    return f"{resource_base(stage, prefix)}-logs-{account_id}-{region}"


def glue_database_name(stage: str, prefix: str) -> str:
    # Glue and Athena want lowercase letters, digits and underscores.
    return resource_base(stage, prefix).replace("-", "_").lower()


def athena_workgroup_name(stage: str, prefix: str) -> str:
    return resource_base(stage, prefix)


LOG_PREFIX = "logs/"


def missing_table_hint(tables: TableNames) -> str:
    names = ", ".join(tables.as_dict().values())
    return (
        f"a table of this installation does not exist ({names}): "
        "run `bedrock-billing init` (or check --stage, --region and --endpoint-url)"
    )
