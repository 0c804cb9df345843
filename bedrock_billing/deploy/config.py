"""The settings of one installation's stack, and the physical names derived from them.

Pure: no AWS calls. The template builder, the deployer and ``--template-out`` all start
from a ``DeployConfig``, so the names a deploy creates and the names the CLI later reads
are computed in one place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.logschema import LOG_TABLE
from bedrock_billing.core.schema import (
    DEFAULT_PREFIX,
    DEFAULT_STAGE,
    TableNames,
    athena_workgroup_name,
    glue_database_name,
    log_bucket_name,
    resource_base,
)

# Lambda runtimes CloudFormation accepts today that are still supported; the default is
# the newest one cfn-lint and the Lambda service both know.
DEFAULT_RUNTIME = "python3.13"
SUPPORTED_RUNTIMES = ("python3.12", "python3.13")
# The longest a streamed API Gateway response and a Lambda invocation may last (seconds).
MAX_TIMEOUT_SECONDS = 900
DEFAULT_TIMEOUT_SECONDS = MAX_TIMEOUT_SECONDS
# Where Lambda finds the wrapper that starts the streaming entry point (deploy/package.py).
STREAM_WRAPPER_PATH = "/var/task/bedrock_billing/proxy/stream_bootstrap"
# CloudWatch Logs accepts only these retention values (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
LOG_PREFIX = "logs/"
ATHENA_RESULTS_PREFIX = "athena-results/"
ERROR_PREFIX = "delivery-errors/"
# The longest token-lookup cache deploy accepts: a revocation, suspension or limit change
# bites within this many seconds (docs/proxy.md).
MAX_AUTH_CACHE_SECONDS = 300
# AWS WAF's bounds on a rate-based rule's limit (requests per evaluation window).
WAF_RATE_LIMIT_MIN = 10
WAF_RATE_LIMIT_MAX = 2_000_000_000
# Lambda's limit on the whole environment (names and values), in bytes.
LAMBDA_ENV_LIMIT = 4096

_STAGE_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,24}$")
_MODEL_RE = re.compile(r"^[a-z0-9][a-z0-9.:_-]{2,199}$")
_ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")


@dataclass(frozen=True)
class DeployConfig:
    """What ``bedrock-billing deploy`` was asked for. Every field has a safe default
    except ``models``: the proxy's role may invoke only the models named here."""

    stage: str = DEFAULT_STAGE
    table_prefix: str = DEFAULT_PREFIX
    models: tuple[str, ...] = ()
    memory_mb: int = 512
    # The Lambda timeout, the streaming integration's timeout and the proxy's integration
    # deadline at once: 15 minutes, the most a streamed API Gateway response may last.
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    runtime: str = DEFAULT_RUNTIME
    auth_cache_seconds: int = 30
    cors_origins: tuple[str, ...] = ()
    prices_json: str | None = None  # inline price book for the budget limit (proxy env)
    model_names_json: str | None = None  # extra model names -> Bedrock ids (proxy env)
    log_retention_days: int = 30
    throttle_rate: float = 50.0  # API stage steady-state requests per second
    throttle_burst: int = 100
    log_transition_days: int = 90  # usage log objects move to STANDARD_IA after this
    noncurrent_expiration_days: int = 30  # old versions of overwritten objects
    athena_results_expiration_days: int = 30
    # Bedrock routing regions per inference-profile prefix, to override the built-in table.
    routing_regions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    stack_name_override: str | None = None
    # Front-door protection, all off by default (template_edge.py, docs/deploy.md).
    waf_rate_limit: int | None = None  # requests per IP per 5 minutes; None: no web ACL
    reserved_concurrency: int | None = None  # the proxy's reserved concurrent executions
    access_logs: bool = False  # API Gateway access logs (needs the account's logging role)
    customer_metrics: bool = False  # per-customer EMF metrics (docs/metrics.md: $0.90/customer)
    quicksight: bool = False  # a QuickSight data source and data set (template_quicksight.py)
    quicksight_principal: str | None = None  # the QuickSight user or group ARN that owns them
    # Charge a generation the client never received in full (docs/proxy.md): the default.
    charge_undelivered: bool = True
    # Bedrock's model invocation logging to the log bucket: "metadata" or "off"
    # (template_invocations.py, invocation_logging.py, docs/reconcile.md).
    invocation_logs: str = "off"
    invocation_log_days: int = 400  # invocation-log objects expire after this

    def __post_init__(self) -> None:
        validate(self)

    # ---- names (pure: the account and region come from CloudFormation pseudo params)

    @property
    def stack_name(self) -> str:
        return self.stack_name_override or f"{self.base}"

    @property
    def base(self) -> str:
        return resource_base(self.stage, self.table_prefix)

    @property
    def tables(self) -> TableNames:
        return TableNames.for_stage(self.stage, self.table_prefix)

    @property
    def function_name(self) -> str:
        return f"{self.base}-proxy"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def api_name(self) -> str:
        return f"{self.base}-api"

    @property
    def api_stage(self) -> str:
        return self.stage

    @property
    def access_log_group_name(self) -> str:
        return f"/aws/apigateway/{self.base}-access"

    @property
    def delivery_stream_name(self) -> str:
        return f"{self.base}-usage-log"

    @property
    def glue_database(self) -> str:
        return glue_database_name(self.stage, self.table_prefix)

    @property
    def glue_table(self) -> str:
        return LOG_TABLE

    @property
    def workgroup(self) -> str:
        return athena_workgroup_name(self.stage, self.table_prefix)

    def log_bucket_name(self, account_id: str, region: str) -> str:
        return log_bucket_name(self.stage, self.table_prefix, account_id, region)

    # The same name as a CloudFormation Fn::Sub string (account and region unknown here).
    @property
    def log_bucket_sub(self) -> str:
        return f"{self.base}-logs-${{AWS::AccountId}}-${{AWS::Region}}"

    def environment(self) -> dict[str, str]:
        """The proxy's environment variables (see docs/proxy.md)."""
        names = self.tables
        env = {
            "BEDROCK_BILLING_STAGE": self.stage,
            "BEDROCK_BILLING_TABLE_PREFIX": self.table_prefix,
            "BEDROCK_BILLING_CUSTOMERS_TABLE": names.customers,
            "BEDROCK_BILLING_TOKENS_TABLE": names.tokens,
            "BEDROCK_BILLING_USAGE_TABLE": names.usage,
            "BEDROCK_BILLING_INVOICES_TABLE": names.invoices,
            "BEDROCK_BILLING_AUTH_CACHE_TTL": str(self.auth_cache_seconds),
            "BEDROCK_BILLING_CORS_ORIGINS": ",".join(self.cors_origins),
            # API Gateway waits as long as the function runs (template.api_resources).
            "BEDROCK_BILLING_INTEGRATION_TIMEOUT": str(self.timeout_seconds),
            "BEDROCK_BILLING_CHARGE_UNDELIVERED": str(self.charge_undelivered).lower(),
            # Lambda's Python runtime runs the streaming Runtime-API loop in place of its
            # buffered one (proxy/streaming.py, docs/decisions.md).
            "AWS_LAMBDA_EXEC_WRAPPER": STREAM_WRAPPER_PATH,
        }
        if self.prices_json:
            env["BEDROCK_BILLING_PRICES"] = self.prices_json
        if self.model_names_json:
            env["BEDROCK_BILLING_MODEL_NAMES"] = self.model_names_json
        if self.customer_metrics:
            env["BEDROCK_BILLING_CUSTOMER_METRICS"] = "on"
        return env


def validate(cfg: DeployConfig) -> None:
    if not _STAGE_RE.match(cfg.stage):
        raise InvalidInput(
            f"invalid stage {cfg.stage!r}: lowercase letters, digits and '-', at most 20"
        )
    if not _PREFIX_RE.match(cfg.table_prefix):
        raise InvalidInput(
            f"invalid table prefix {cfg.table_prefix!r}: lowercase letters, digits and '-', "
            "at most 25 (the log bucket name must stay within 63 characters)"
        )
    if cfg.invocation_logs not in ("metadata", "off"):
        raise InvalidInput(
            f"invalid --invocation-logs {cfg.invocation_logs!r}: choose metadata or off"
        )
    if not cfg.models:
        raise InvalidInput(
            "give at least one --model: the proxy's role may invoke only the models named"
        )
    for model in cfg.models:
        if not _MODEL_RE.match(model):
            raise InvalidInput(f"invalid model id {model!r}")
    if cfg.model_names_json is not None:
        from ..core.model_names import ModelNames, ModelNamesError

        try:
            ModelNames.from_env({"BEDROCK_BILLING_MODEL_NAMES": cfg.model_names_json}, None)
        except ModelNamesError as exc:
            raise InvalidInput(f"invalid model names file: {exc}") from None
    if not 128 <= cfg.memory_mb <= 10240:
        raise InvalidInput("memory must be between 128 and 10240 MB")
    if not 3 <= cfg.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise InvalidInput(f"timeout must be between 3 and {MAX_TIMEOUT_SECONDS} seconds")
    if cfg.runtime not in SUPPORTED_RUNTIMES:
        raise InvalidInput(f"runtime must be one of {', '.join(SUPPORTED_RUNTIMES)}")
    if not 0 <= cfg.auth_cache_seconds <= MAX_AUTH_CACHE_SECONDS:
        raise InvalidInput(
            f"the auth cache time must be 0 to {MAX_AUTH_CACHE_SECONDS} seconds: a revoked "
            "token keeps working for up to that long"
        )
    for origin in cfg.cors_origins:
        if not _ORIGIN_RE.match(origin):
            raise InvalidInput(
                f"invalid CORS origin {origin!r}: give scheme://host[:port], no '*', no path"
            )
    if cfg.log_retention_days not in LOG_RETENTION_DAYS:
        raise InvalidInput(
            f"log retention must be one of {', '.join(map(str, LOG_RETENTION_DAYS))} days"
        )
    if cfg.throttle_rate <= 0 or cfg.throttle_burst <= 0:
        raise InvalidInput("API throttling rate and burst must be positive")
    if cfg.waf_rate_limit is not None and not (
        WAF_RATE_LIMIT_MIN <= cfg.waf_rate_limit <= WAF_RATE_LIMIT_MAX
    ):
        raise InvalidInput(
            f"the WAF rate limit must be {WAF_RATE_LIMIT_MIN} to {WAF_RATE_LIMIT_MAX:,} "
            "requests per IP per 5 minutes"
        )
    if cfg.quicksight and not re.fullmatch(
        r"arn:aws[a-z-]*:quicksight:[a-z0-9-]+:\d{12}:(user|group)/[\w+=,.@/-]+",
        cfg.quicksight_principal or "",
    ):
        raise InvalidInput(
            "--quicksight needs --quicksight-principal: the ARN of the QuickSight user or "
            "group that owns the data set (arn:aws:quicksight:REGION:ACCOUNT:user/default/NAME)"
        )
    if cfg.reserved_concurrency is not None and cfg.reserved_concurrency < 1:
        raise InvalidInput(
            "reserved concurrency must be at least 1 (0 would stop the proxy altogether)"
        )
    for days in (
        cfg.log_transition_days,
        cfg.noncurrent_expiration_days,
        cfg.athena_results_expiration_days,
    ):
        if days < 1:
            raise InvalidInput("lifecycle days must be at least 1")
    if cfg.log_transition_days < 30:
        raise InvalidInput("S3 moves objects to STANDARD_IA after 30 days at the earliest")
    if cfg.prices_json is not None:
        try:
            json.loads(cfg.prices_json)
        except ValueError as exc:
            raise InvalidInput(f"the price book is not valid JSON: {exc}") from None
    size = sum(len(k) + len(v.encode()) for k, v in cfg.environment().items())
    if size > LAMBDA_ENV_LIMIT:
        raise InvalidInput(
            f"the proxy's environment would be {size} bytes, over Lambda's {LAMBDA_ENV_LIMIT}:"
            " keep only the allowed models' prices in the price book"
        )
