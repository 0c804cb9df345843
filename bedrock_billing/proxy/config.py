"""The proxy's settings, read once per container from environment variables.

docs/proxy.md lists every variable. A malformed value stops the container at start
(a configuration error is the operator's to fix, not a customer's 4xx).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..core.model_names import ModelNames, ModelNamesError
from ..core.schema import DEFAULT_PREFIX, DEFAULT_STAGE, TableNames
from .prices import PriceTable

ENV = "BEDROCK_BILLING_"


class ConfigError(ValueError):
    pass


def _number(env, name: str, default: float, minimum: float = 0) -> float:
    raw = env.get(ENV + name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{ENV}{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{ENV}{name} must be at least {minimum}")
    return value


def _flag(env, name: str, default: bool) -> bool:
    raw = (env.get(ENV + name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "on", "yes"):
        return True
    if raw in ("0", "false", "off", "no"):
        return False
    raise ConfigError(f"{ENV}{name} must be on or off, got {raw!r}")


@dataclass(frozen=True)
class ProxyConfig:
    tables: TableNames = field(default_factory=TableNames.for_stage)
    # How long a token lookup (token item + customer item) is reused in a warm container.
    # This is the longest delay before a revocation, suspension or limit change bites.
    auth_cache_ttl: float = 30.0
    # Unknown tokens are remembered this long, so a flood of bad tokens costs few reads.
    negative_cache_ttl: float = 5.0
    auth_cache_size: int = 2048
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 6 * 1024 * 1024  # Lambda's own synchronous payload bound
    integration_timeout: float = 29.0  # API Gateway's default integration timeout, seconds
    near_timeout_fraction: float = 0.9  # flag requests that used this much of it
    bedrock_read_timeout: float = 300.0
    # Seconds kept before the request's deadline to record its outcome (proxy/deadline.py).
    deadline_margin: float = 5.0
    # Whether a generation the client never received in full (it hung up, or the deadline
    # stopped it) is charged: its tokens are recorded either way (docs/proxy.md).
    charge_undelivered: bool = True
    prices: PriceTable | None = None
    region: str | None = None
    # Anthropic's model names and the operator's own, to Bedrock ids (core/model_names.py)
    model_names: ModelNames = field(default_factory=ModelNames)
    # CloudWatch EMF records per request (logline.request_metrics): on in a deployment,
    # off where a test builds its own config; per-customer dimensions only when asked.
    request_metrics: bool = False
    customer_metrics: bool = False

    @classmethod
    def from_env(cls, env: dict | os._Environ | None = None) -> ProxyConfig:
        env = os.environ if env is None else env
        tables = TableNames.for_stage(
            env.get(ENV + "STAGE") or DEFAULT_STAGE,
            env.get(ENV + "TABLE_PREFIX", DEFAULT_PREFIX),
        )
        explicit = {
            name: env[f"{ENV}{name.upper()}_TABLE"]
            for name in tables.as_dict()
            if env.get(f"{ENV}{name.upper()}_TABLE")
        }
        if explicit:
            tables = TableNames(**{**tables.as_dict(), **explicit})
        origins = tuple(
            o.strip().rstrip("/") for o in env.get(ENV + "CORS_ORIGINS", "").split(",") if o.strip()
        )
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
        return cls(
            tables=tables,
            auth_cache_ttl=_number(env, "AUTH_CACHE_TTL", cls.auth_cache_ttl),
            negative_cache_ttl=_number(env, "NEGATIVE_CACHE_TTL", cls.negative_cache_ttl),
            auth_cache_size=int(_number(env, "AUTH_CACHE_SIZE", cls.auth_cache_size, 1)),
            cors_origins=origins,
            max_body_bytes=int(_number(env, "MAX_BODY_BYTES", cls.max_body_bytes, 1)),
            integration_timeout=_number(env, "INTEGRATION_TIMEOUT", cls.integration_timeout, 1),
            bedrock_read_timeout=_number(env, "BEDROCK_READ_TIMEOUT", cls.bedrock_read_timeout, 1),
            deadline_margin=_number(env, "DEADLINE_MARGIN", cls.deadline_margin),
            charge_undelivered=_flag(env, "CHARGE_UNDELIVERED", cls.charge_undelivered),
            prices=PriceTable.from_env(env),
            region=region,
            model_names=_model_names(env, region),
            request_metrics=_flag(env, "REQUEST_METRICS", True),
            customer_metrics=_flag(env, "CUSTOMER_METRICS", False),
        )


def _model_names(env, region: str | None) -> ModelNames:
    try:
        return ModelNames.from_env(env, region)
    except ModelNamesError as exc:
        raise ConfigError(str(exc)) from None
