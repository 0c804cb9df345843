"""Settings: the one place that resolves profile, region, endpoint, output, stage and names,
and that reads and writes the configuration file.

Precedence, highest first: command-line flags; ``BEDROCK_BILLING_*`` variables; the
standard ``AWS_*`` variables; the config file's section for the stage; defaults. The config
file is ``$BEDROCK_BILLING_CONFIG``, else ``${XDG_CONFIG_HOME:-~/.config}/bedrock-billing/
config.toml``, one TOML table per stage (``deploy`` and ``init`` write it).

A stage lives in one region: once the file records it, an ambient ``AWS_REGION`` or
``AWS_DEFAULT_REGION`` that says otherwise is refused (``--region`` or
``BEDROCK_BILLING_REGION`` reach another region on purpose).

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
    "invocation_logs",
    "seller_name",
    "seller_address",
    "seller_tax_id",
    "payment_terms_days",
    "alert_thresholds",  # comma-separated percentages: the default for every customer
    "alerts_topic_arn",  # the operator's SNS topic (a deploy output)
    "webhook_key",  # KMS key id or alias that encrypts webhook signing secrets
)
# The keys only an operator sets; a deploy writes the others.
OPERATOR_KEYS = (
    "profile",
    "endpoint_url",
    "output",
    "price_book",
    "seller_name",
    "seller_address",
    "seller_tax_id",
    "payment_terms_days",
    "alert_thresholds",
)
# Variables that name a region without meaning to choose one for this tool.
AMBIENT_REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


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
    invocation_logs: str | None = None  # metadata | off: the last deploy's --invocation-logs
    seller_name: str | None = None
    seller_address: str | None = None
    seller_tax_id: str | None = None
    payment_terms_days: str | None = None
    alert_thresholds: str | None = None
    alerts_topic_arn: str | None = None
    webhook_key: str | None = None
    config_file: Path | None = None
    debug: bool = False
    recorded_region: str | None = None  # the region the config file records for the stage
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _session: Any = field(default=None, repr=False, compare=False)

    @property
    def explicit_stage(self) -> bool:
        """Whether the stage was chosen (flag or variable) rather than defaulted."""
        return self.sources.get("stage", "default") != "default"

    @property
    def tables(self) -> TableNames:
        return TableNames.for_stage(self.stage, self.table_prefix)

    def session(self):
        """The boto3 session, made once (see awsclient.make_session)."""
        if self._session is None:
            from .awsclient import make_session

            self._session = make_session(self)
        return self._session

    def client(self, service: str):
        from .awsclient import make_client

        return make_client(self, service)

    def public_dict(self) -> dict[str, Any]:
        hidden = ("sources", "recorded_region", "debug")
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if not f.name.startswith("_") and f.name not in hidden
        }


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
    """Resolve settings from flags (the arguments), the environment and the config file;
    ``settings.sources`` says where each value came from (``config show`` prints it)."""
    env = dict(os.environ) if env is None else env
    sources: dict[str, str] = {}
    for flag, given in (("--stage", stage), ("--table-prefix", table_prefix)):
        # An empty value would fall through to the default ("prod"): dangerous with destroy.
        if given is not None and not given.strip():
            raise InvalidInput(f"{flag} must not be empty")

    def pick(key: str, flag: str | None, flag_name: str | None, *names: str) -> str | None:
        if flag not in (None, ""):
            sources[key] = f"flag {flag_name}"
            return flag
        for name in names:
            if env.get(name):
                sources[key] = f"env {name}"
                return env[name]
        return None

    chosen_stage = pick("stage", stage, "--stage", "BEDROCK_BILLING_STAGE") or DEFAULT_STAGE
    sources.setdefault("stage", "default")
    path = config_path(env)
    file_data = read_config_file(path)
    section = file_data.get(chosen_stage, {})
    if not isinstance(section, dict):
        raise InvalidInput(f"config file {path}: [{chosen_stage}] must be a table")
    if _sandbox_over_a_recorded_stage(section, endpoint_url, env):
        # A loopback endpoint is a sandbox, not the installation the file records under this
        # stage's name: its region, bucket and stack would send the commands astray.
        section = {}
        sources["config_file_section"] = f"[{chosen_stage}] ignored: a loopback endpoint"

    def value(key: str, flag: str | None, flag_name: str | None, *names: str) -> str | None:
        got = pick(key, flag, flag_name, *names)
        if got is None and section.get(key) not in (None, ""):
            sources[key] = f"config file [{chosen_stage}]"
            got = str(section[key])
        return got

    settings = Settings(
        profile=value("profile", profile, "--profile", "BEDROCK_BILLING_PROFILE", "AWS_PROFILE"),
        region=value(
            "region", region, "--region", "BEDROCK_BILLING_REGION", *AMBIENT_REGION_VARIABLES
        ),
        endpoint_url=value(
            "endpoint_url",
            endpoint_url,
            "--endpoint-url",
            "BEDROCK_BILLING_ENDPOINT_URL",
            "AWS_ENDPOINT_URL",
        ),
        output=(value("output", output, "--output", "BEDROCK_BILLING_OUTPUT") or "table").lower(),
        stage=chosen_stage,
        table_prefix=value(
            "table_prefix", table_prefix, "--table-prefix", "BEDROCK_BILLING_TABLE_PREFIX"
        )
        or DEFAULT_PREFIX,
        config_file=path,
        recorded_region=str(section["region"]) if section.get("region") else None,
        sources=sources,
    )
    for key in FILE_KEYS[FILE_KEYS.index("stack_name") :]:
        env_name = "BEDROCK_BILLING_" + key.upper()
        setattr(settings, key, value(key, None, None, env_name))
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
    _refuse_ambient_region(settings)
    return settings


def _sandbox_over_a_recorded_stage(section: dict, flag: str | None, env) -> bool:
    from .awsclient import is_loopback

    given = flag or env.get("BEDROCK_BILLING_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL")
    return bool(section) and is_loopback(given) and section.get("endpoint_url") != given


def _refuse_ambient_region(settings: Settings) -> None:
    """A stage lives in one region: an ambient variable may not move it elsewhere."""
    source = settings.sources.get("region", "")
    ambient = source.removeprefix("env ") in AMBIENT_REGION_VARIABLES
    recorded = settings.recorded_region
    if ambient and recorded and settings.region != recorded:
        variable = source.removeprefix("env ")
        raise InvalidInput(
            f"stage {settings.stage} is recorded in region {recorded} ({settings.config_file}) "
            f"but {variable} says {settings.region}: unset {variable}, or pass --region "
            f"{settings.region} (or BEDROCK_BILLING_REGION) to reach that region on purpose"
        )


def record_stage_region(settings: Settings) -> Path | None:
    """Record the stage's region in the config file (``init`` and a first implicit table
    creation do, as ``deploy`` does). Not for a loopback endpoint: a sandbox is no stage."""
    from .awsclient import is_loopback

    if not settings.region or settings.recorded_region or is_loopback(settings.endpoint_url):
        return None
    path = write_stage_config(settings.config_file or config_path(), settings.stage,
                              {"region": settings.region})  # fmt: skip
    settings.recorded_region = settings.region
    return path


def write_stage_config(path: Path | str, stage: str, values: dict) -> Path:
    """Set ``[stage]``'s keys to ``values`` (None drops a key), keep the rest of the file:
    the other stages, the order, and the operator's comments (tomlkit keeps them).

    Written to a temporary file and renamed, so a reader never sees half a file.
    """
    import tomlkit

    path = Path(path)
    read_config_file(path)  # the same one-line error for a broken file as a reader gets
    document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else None
    document = document if document is not None else tomlkit.document()
    if stage not in document:
        document[stage] = tomlkit.table()
    table = document[stage]
    for key, item in values.items():
        if item is None:
            table.pop(key, None)
        else:
            table[key] = item
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(tomlkit.dumps(document), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _valid_endpoint(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _valid_name(text: str) -> bool:
    return bool(text) and len(text) <= 64 and all(c.isalnum() or c in "-_." for c in text)
