"""Settings: the one place that resolves profile, region, endpoint, output, stage and names.

Precedence, highest first: command-line flags; ``BEDROCK_BILLING_*`` variables; the
standard ``AWS_*`` variables; the config file's section for the stage; defaults. The config
file is ``$BEDROCK_BILLING_CONFIG``, else ``${XDG_CONFIG_HOME:-~/.config}/bedrock-billing/
config.toml``, one TOML table per stage (``deploy`` writes it).

This module imports no boto3: ``--help`` stays fast. Sessions are made on first use.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .core.errors import InvalidInput
from .core.schema import DEFAULT_PREFIX, DEFAULT_STAGE, TableNames

OUTPUTS = ("table", "json", "csv")

# Keys a stage's section of the config file may hold (deploy writes the later ones).
FILE_KEYS = (
    "profile",
    "region",
    "endpoint_url",
    "output",
    "table_prefix",
    "stack_name",
    "api_url",
    "athena_workgroup",
    "athena_database",
    "athena_table",
    "athena_output_location",
    "log_bucket",
    "log_prefix",
    "price_book",
    "deploy_models",
    "alert_thresholds",  # comma-separated percentages: the default for every customer
    "alerts_topic_arn",  # the operator's SNS topic (a deploy output)
    "webhook_key",  # KMS key id or alias that encrypts webhook signing secrets
)


def config_path(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("BEDROCK_BILLING_CONFIG"):
        return Path(env["BEDROCK_BILLING_CONFIG"]).expanduser()
    home = Path(env["HOME"]) if env.get("HOME") else Path("~").expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(base) / "bedrock-billing" / "config.toml"


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise InvalidInput(f"cannot read config file {path}: {exc}") from None
    return data


@dataclass
class Settings:
    """Everything a command needs to reach its AWS resources and render its output."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    output: str = "table"
    stage: str = DEFAULT_STAGE
    table_prefix: str = DEFAULT_PREFIX
    stack_name: str | None = None
    api_url: str | None = None
    athena_workgroup: str | None = None
    athena_database: str | None = None
    athena_table: str | None = None
    athena_output_location: str | None = None
    log_bucket: str | None = None
    log_prefix: str | None = None
    price_book: str | None = None
    deploy_models: str | None = None  # comma-separated: the models of the last deploy
    alert_thresholds: str | None = None
    alerts_topic_arn: str | None = None
    webhook_key: str | None = None
    config_file: Path | None = None
    _session: Any = field(default=None, repr=False, compare=False)

    @property
    def tables(self) -> TableNames:
        return TableNames.for_stage(self.stage, self.table_prefix)

    def session(self):
        """The boto3 session, made once (see stores.aws.make_session)."""
        if self._session is None:
            from .stores.aws import make_session

            self._session = make_session(self)
        return self._session

    def client(self, service: str):
        from .stores.aws import make_client

        return make_client(self, service)

    def public_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


def resolve_settings(
    *,
    profile: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    output: str | None = None,
    stage: str | None = None,
    table_prefix: str | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Resolve settings from flags (the arguments), the environment and the config file."""
    env = dict(os.environ) if env is None else env
    for flag, given in (("--stage", stage), ("--table-prefix", table_prefix)):
        # An empty value would fall through to the default ("prod"): dangerous with destroy.
        if given is not None and not given.strip():
            raise InvalidInput(f"{flag} must not be empty")

    def pick(flag: str | None, *names: str) -> str | None:
        if flag not in (None, ""):
            return flag
        for name in names:
            if env.get(name):
                return env[name]
        return None

    chosen_stage = pick(stage, "BEDROCK_BILLING_STAGE") or DEFAULT_STAGE
    path = config_path(env)
    file_data = read_config_file(path)
    section = file_data.get(chosen_stage, {})
    if not isinstance(section, dict):
        raise InvalidInput(f"config file {path}: [{chosen_stage}] must be a table")

    def value(flag: str | None, key: str, *names: str) -> str | None:
        got = pick(flag, *names)
        if got is None and section.get(key) not in (None, ""):
            got = str(section[key])
        return got

    settings = Settings(
        profile=value(profile, "profile", "BEDROCK_BILLING_PROFILE", "AWS_PROFILE"),
        region=value(
            region, "region", "BEDROCK_BILLING_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"
        ),
        endpoint_url=value(
            endpoint_url, "endpoint_url", "BEDROCK_BILLING_ENDPOINT_URL", "AWS_ENDPOINT_URL"
        ),
        output=(value(output, "output", "BEDROCK_BILLING_OUTPUT") or "table").lower(),
        stage=chosen_stage,
        table_prefix=value(table_prefix, "table_prefix", "BEDROCK_BILLING_TABLE_PREFIX")
        or DEFAULT_PREFIX,
        config_file=path,
    )
    for key in FILE_KEYS[FILE_KEYS.index("stack_name") :]:
        env_name = "BEDROCK_BILLING_" + key.upper()
        setattr(settings, key, value(None, key, env_name))
    if settings.output not in OUTPUTS:
        raise InvalidInput(f"invalid output {settings.output!r}: choose table, json or csv")
    if settings.endpoint_url and not _valid_endpoint(settings.endpoint_url):
        # botocore would fail later with a bare ValueError ("unexpected ValueError", exit 1)
        raise InvalidInput(
            f"invalid endpoint URL {settings.endpoint_url!r}: expected http(s)://host[:port]"
        )
    if not _valid_name(settings.stage):
        raise InvalidInput(f"invalid stage {settings.stage!r}: use letters, digits, - and _")
    if not _valid_name(settings.table_prefix):
        raise InvalidInput(f"invalid table prefix {settings.table_prefix!r}")
    return settings


def _valid_endpoint(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _valid_name(text: str) -> bool:
    return bool(text) and len(text) <= 64 and all(c.isalnum() or c in "-_." for c in text)
